"""The no-display sample run and the installation self-test (cmdsr_app.headless).

Runs against a temporary resources folder: the stand-in model from build_spec (a tiny network
that upscales by pixel repetition, so its output is a real picture) and the bundled sample.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import engine.resources
from cmdsr_app import headless
from engine import ModelConfig, build_model, save_model
from engine.io.imageio import read_image

ROOT = Path(__file__).resolve().parents[2]


def _placeholder_module():
    spec = importlib.util.spec_from_file_location(
        "placeholder_resources", ROOT / "build_spec" / "placeholder_resources.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("placeholder_resources", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A resources/ folder with the stand-in default model and a sample photo, in place of the
    checkout's (the real trained model may or may not be there)."""
    placeholder = _placeholder_module()
    root = tmp_path / "resources"
    (root / "models").mkdir(parents=True)
    placeholder.make_placeholder_model(root / "models" / engine.resources.DEFAULT_MODEL_NAME)
    placeholder.make_placeholder_image(root / "samples" / engine.resources.SAMPLE_NAME,
                                       width=80, height=60)
    monkeypatch.setattr(engine.resources, "resources_dir", lambda: root)
    return root


def _lines(text: str, prefix: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_psnr_known_values() -> None:
    a = np.zeros((4, 4, 3))
    assert headless.psnr(a, a) == math.inf
    assert headless.psnr(a, a + 255) == pytest.approx(0.0)
    assert headless.psnr(a, a + 2.55) == pytest.approx(40.0)


def test_selftest_passes_on_a_working_install(resources: Path, qapp, capsys) -> None:
    assert headless.selftest() == 0
    out = capsys.readouterr().out
    passed = _lines(out, "PASS ")
    assert [line.split(":")[0] for line in passed] == [
        "PASS default model", "PASS sample photo", "PASS upscale", "PASS training", "PASS qt",
    ]
    assert not _lines(out, "FAIL ")
    assert "80x60 -> 320x240" in out
    assert "self-test passed: 5 checks" in out


def test_selftest_fails_on_garbage_weights(resources: Path, qapp, capsys) -> None:
    # An untrained network with the reference's N(0,1) weights: loads fine, upscales to noise.
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=4, cond_channels=8)
    save_model(build_model(cfg), resources / "models" / engine.resources.DEFAULT_MODEL_NAME)
    assert headless.selftest() == 1
    out = capsys.readouterr().out
    assert "PASS default model" in out
    (fail,) = _lines(out, "FAIL ")
    assert fail.startswith("FAIL upscale:")
    assert "dB against bicubic" in fail or "flat" in fail
    assert "self-test FAILED: 1 of 5 checks (upscale)" in out


def test_selftest_reports_a_missing_model(resources: Path, qapp, capsys) -> None:
    (resources / "models" / engine.resources.DEFAULT_MODEL_NAME).unlink()
    assert headless.selftest() == 1
    out = capsys.readouterr().out
    fails = _lines(out, "FAIL ")
    assert fails[0].startswith("FAIL default model:") and "model file not found" in fails[0]
    assert fails[1] == "FAIL upscale: skipped (needs the default model and the sample photo)"
    assert "PASS sample photo" in out and "PASS training" in out


def test_selftest_reports_a_corrupt_sample(resources: Path, qapp, capsys) -> None:
    (resources / "samples" / engine.resources.SAMPLE_NAME).write_bytes(b"\x89PNG\r\n\x1a\nnope")
    assert headless.selftest() == 1
    fails = _lines(capsys.readouterr().out, "FAIL ")
    assert fails[0].startswith("FAIL sample photo:") and "sample.png" in fails[0]
    assert "Error:" not in fails[0]  # the engine's own message, not a traceback-ish type name


def test_run_sample_writes_the_result_where_asked(resources: Path, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "out"
    assert headless.run_sample(out_dir) == 0
    result = out_dir / "sample_x4.png"
    image = read_image(result)
    assert (image.width, image.height) == (320, 240)
    # The stand-in model repeats pixels: the result is the sample, 4x bigger.
    sample = read_image(resources / "samples" / engine.resources.SAMPLE_NAME).pixels
    assert np.abs(image.pixels[::4, ::4] - sample).max() <= 1.0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and str(result) in out
    # A second run replaces its own earlier result.
    assert headless.run_sample(out_dir) == 0


def test_run_sample_defaults_to_the_user_data_folder(
    resources: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")  # appdirs reads XDG_DATA_HOME on Linux
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / headless.APP_NAME / "outputs" / "sample_x4.png"
    assert headless.default_output_dir() == expected.parent
    assert headless.run_sample() == 0
    assert expected.is_file()
    assert str(expected) in capsys.readouterr().out


def test_run_sample_without_model_says_so_in_one_line(resources: Path, tmp_path: Path, capsys) -> None:
    (resources / "models" / engine.resources.DEFAULT_MODEL_NAME).unlink()
    assert headless.run_sample(tmp_path / "out") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "model file not found" in err[0]
    assert not (tmp_path / "out").exists()


def test_run_sample_into_an_unusable_folder_fails_cleanly(resources: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    assert headless.run_sample(blocker) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
