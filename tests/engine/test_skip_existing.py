"""Finishing an interrupted batch: ``cmdsr upscale --skip-existing`` leaves finished outputs
alone, and the hidden temp file a killed run left beside an output is cleared."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from engine import build_model, save_model
from engine.cli import main
from engine.fileio import atomic_write, remove_stale_temps


@pytest.fixture
def model_path(tmp_path, seeded, tiny_config) -> Path:
    return save_model(build_model(tiny_config), tmp_path / "tiny.pt")


@pytest.fixture
def inputs(tmp_path, rng) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("a", "b", "c"):
        PILImage.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(root / f"{name}.png")
    return root


def _run(capsys, *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_rerun_of_a_partly_done_batch(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    # as if the earlier run was killed after a.png: its output is there, untouched since
    (out / "a_x4.png").write_bytes(b"finished earlier")
    code, err = _run(capsys, "upscale", inputs, "-o", out, "--model", model_path)
    assert code == 2
    assert "a_x4.png: already exists" in err and "--skip-existing" in err

    assert PILImage.open(out / "b_x4.png").size == (56, 48)  # the others went on
    b_bytes = (out / "b_x4.png").read_bytes()
    (out / "c_x4.png").unlink()  # as if that run was killed before c

    code, err = _run(capsys, "upscale", inputs, "-o", out, "--model", model_path, "--skip-existing")
    assert code == 0, err
    assert "upscaled 1 of 1 image(s)" in err and "(2 skipped: output exists)" in err
    assert (out / "a_x4.png").read_bytes() == b"finished earlier"
    assert (out / "b_x4.png").read_bytes() == b_bytes
    assert PILImage.open(out / "c_x4.png").size == (56, 48)


def test_skip_existing_and_overwrite_exclude_each_other(tmp_path, inputs, model_path, capsys):
    code, err = _run(capsys, "upscale", inputs, "-o", tmp_path / "o", "--model", model_path,
                     "--skip-existing", "--overwrite")
    assert code == 2
    assert "not allowed with argument --skip-existing" in err
    assert not (tmp_path / "o").exists()


def test_stale_temp_of_a_killed_run_is_removed(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a_x4.png.k1ll3d.tmp"
    stale.write_bytes(b"half a png")
    fresh = out / ".b_x4.png.wr1t1ng.tmp"  # another process may be writing this one now
    fresh.write_bytes(b"in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    code, err = _run(capsys, "upscale", inputs, "-o", out, "--model", model_path)
    assert code == 0, err
    assert not stale.exists()
    assert fresh.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a_x4.png", "b_x4.png", "c_x4.png"]


def test_remove_stale_temps_only_touches_its_own_target(tmp_path):
    target = tmp_path / "photo[1]_x4.png"
    atomic_write(target, lambda fh: fh.write(b"ok"), overwrite=False)
    mine = tmp_path / ".photo[1]_x4.png.abc.tmp"
    other = tmp_path / ".photo1_x4.png.abc.tmp"  # '[1]' is not a glob class here
    user = tmp_path / "photo[1]_x4.png.tmp"  # not hidden: not one of ours
    for p in (mine, other, user):
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 3600,) * 2)
    assert remove_stale_temps(target) == [mine]
    assert other.exists() and user.exists() and target.read_bytes() == b"ok"
    assert remove_stale_temps(tmp_path / "missing" / "x.png") == []
