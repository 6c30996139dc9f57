"""``cmdsr inspect``: text and ``--json`` output (one object for an image file, a list with
paths for folders), exit codes and one-line errors (no readout, bad image, bad region)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine import ModelConfig, build_model, save_model
from engine.cli import main
from engine.damage_head import DamageHead, attach_damage_head

TINY = ModelConfig(channels=8, blocks=2, support_size=4, cond_channels=16)


@pytest.fixture
def model_path(tmp_path, seeded) -> Path:
    model = build_model(TINY)
    head = DamageHead(16, hidden=8)
    with torch.no_grad():
        head.out_mean.copy_(torch.tensor([2.0, 10.0]))
        head.in_std.fill_(1e-3)  # an untrained condition varies little: make it show
    attach_damage_head(model, head)
    return save_model(model, tmp_path / "with_head.pt")


@pytest.fixture
def photos(tmp_path, rng) -> Path:
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    PILImage.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(root / "a.png")
    PILImage.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(
        root / "sub" / "b.jpg", quality=90)
    return root


def _run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_single_image_json_is_one_object(photos, model_path, capsys):
    code, out, err = _run(capsys, "inspect", photos / "a.png", "--model", model_path, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert set(obj) == {"blur_sigma", "noise_sigma"}
    assert all(isinstance(v, float) and v >= 0 for v in obj.values())


def test_folder_json_is_a_list_with_paths(photos, model_path, capsys):
    code, out, err = _run(capsys, "inspect", photos, "--model", model_path, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [Path(r["path"]).name for r in rows] == ["a.png", "b.jpg"]
    assert all(set(r) == {"path", "blur_sigma", "noise_sigma"} for r in rows)
    # the folder's entry for a.png equals inspecting the file alone
    code, single, _ = _run(capsys, "inspect", photos / "a.png", "--model", model_path, "--json")
    assert json.loads(single) == {k: v for k, v in rows[0].items() if k != "path"}


def test_text_output_names_units(photos, model_path, capsys):
    code, out, err = _run(capsys, "inspect", photos / "a.png", "--model", model_path)
    assert code == 0, err
    assert out.count("\n") == 1
    assert "a.png: blur sigma" in out and "HR pixels" in out and "grey levels" in out


def test_support_regions_change_the_reading(photos, model_path, capsys):
    args = ("inspect", photos / "a.png", "--model", model_path, "--json")
    _, whole, _ = _run(capsys, *args)
    code, region, err = _run(capsys, *args, "--support", "0,0,32,32")
    assert code == 0, err
    _, again, _ = _run(capsys, *args, "--support", "0,0,32,32")
    assert json.loads(region) == json.loads(again)  # seeded: the same patches each run
    assert json.loads(region) != json.loads(whole)


def test_model_without_readout_is_one_line_exit_2(tmp_path, photos, seeded, capsys):
    plain = save_model(build_model(TINY), tmp_path / "plain.pt")
    code, out, err = _run(capsys, "inspect", photos / "a.png", "--model", plain, "--json")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0
    assert "no damage readout" in err


def test_bad_image_and_bad_region_exit_2(tmp_path, photos, model_path, capsys):
    (photos / "broken.png").write_text("not an image")
    code, out, err = _run(capsys, "inspect", photos, "--model", model_path, "--json")
    assert code == 2
    assert [Path(r["path"]).name for r in json.loads(out)] == ["a.png", "b.jpg"]
    assert "broken.png" in err and "1 problem" in err
    code, out, err = _run(capsys, "inspect", photos / "a.png", "--model", model_path,
                          "--support", "100,100,40,40")
    assert code == 2 and out == ""
    assert "support region 1" in err and err.strip().count("\n") == 0
    code, _, err = _run(capsys, "inspect", tmp_path / "missing.png", "--model", model_path)
    assert code == 2 and "no such file" in err
    code, _, err = _run(capsys, "inspect", "--model", model_path)
    assert code == 2 and "no input images" in err


def test_help_does_not_load_torch():
    """``add_parser`` imports nothing heavy: the command registers without torch. (The
    ``engine`` package's own __init__ loads torch, so the test stands in an empty package.)"""
    script = ("import importlib, sys, argparse, types\n"
              "pkg = types.ModuleType('engine'); pkg.__path__ = ['engine']\n"
              "sys.modules['engine'] = pkg\n"
              "mod = importlib.import_module('engine.cli.inspect')\n"
              "p = argparse.ArgumentParser(); mod.add_parser(p.add_subparsers())\n"
              "print('torch' in sys.modules)\n")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == "False"
