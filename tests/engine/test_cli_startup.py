"""``cmdsr`` answers help and usage errors without importing PyTorch (or OpenCV/NumPy), with
the usual exit codes; ``--threads`` and ``--precision auto`` reach the engine; the lazy
``engine`` package still exports every public name."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from engine.cli.main import build_parser, main

# Each argv runs through main() in one fresh interpreter, which then reports the exit code,
# the last line of stderr and which heavy modules got imported.
_PROBE = r"""
import contextlib, io, json, sys
from engine.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(argv)
    lines = (err.getvalue() or out.getvalue()).strip().splitlines()
    results.append([code, lines[-1] if lines else "", len(out.getvalue())])
heavy = sorted(m for m in ("torch", "cv2", "numpy", "PIL", "tqdm") if m in sys.modules)
print(json.dumps({"results": results, "heavy": heavy}))
"""


def _probe(argvs: list[list[str]]) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_and_usage_errors_import_no_heavy_module(tmp_path):
    argvs = [
        ["--help"],
        ["upscale", "--help"],
        ["train", "--help"],
        ["eval", "--help"],
        ["upscale", str(tmp_path / "a.png")],  # no -o
        ["upscale", "-o", str(tmp_path), "--threads", "0", "a.png"],
        ["--threads", "many", "upscale", "-o", str(tmp_path), "a.png"],
        ["upscale", "-o", str(tmp_path), "--precision", "half", "a.png"],
        ["frobnicate"],
        [],
    ]
    report = _probe(argvs)
    assert report["heavy"] == []
    codes = [code for code, _, _ in report["results"]]
    assert codes == [0, 0, 0, 0, 2, 2, 2, 2, 2, 2]
    lines = [line for _, line, _ in report["results"]]
    assert "the following arguments are required: -o/--output" in lines[4]
    assert "argument --threads: must be 1..1024, got 0" in lines[5]
    assert "argument --threads: expected a whole number of threads, got 'many'" in lines[6]
    assert "invalid choice: 'half'" in lines[7]
    assert "invalid choice: 'frobnicate'" in lines[8]
    assert report["results"][1][2] > 500  # the upscale help text itself was printed


def test_importing_the_engine_package_does_not_import_torch():
    code = "import sys, engine; print('torch' in sys.modules, engine.ConfigError.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["False", "ConfigError"]


def test_every_public_name_resolves_and_functions_win_over_same_named_modules():
    import engine.degrade
    import engine.training.loop  # noqa: F401  (sets no package attribute over the function)

    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert callable(engine.train) and engine.train.__module__ == "engine.training.loop"
    assert callable(engine.degrade) and engine.degrade.__module__ == "engine.degrade"
    assert set(engine.__all__) <= set(dir(engine))
    with pytest.raises(AttributeError, match="no attribute 'nonesuch'"):
        _ = engine.nonesuch  # type: ignore[attr-defined]


def test_upscale_option_defaults_match_the_engine():
    from engine.cli import upscale_args as light
    from engine.inference.upscaler import METHODS, PRECISION_CHOICES, TileConfig
    from engine.io.imageio import DEFAULT_MAX_PIXELS, normalise_format

    assert light.METHODS == METHODS and light.PRECISION_CHOICES == PRECISION_CHOICES
    assert light.DEFAULT_OVERLAP == TileConfig().overlap
    assert light.DEFAULT_MAX_MEGAPIXELS == DEFAULT_MAX_PIXELS / 1e6
    for fmt in light.FORMAT_CHOICES:
        normalise_format(fmt)
    args = build_parser().parse_args(["upscale", "-o", "out", "a.png"])
    assert args.precision == "auto" and args.method == "cmdsr" and args.threads is None


@pytest.mark.parametrize("where", ["before", "after"])
def test_threads_option_sets_torch_threads(tmp_path, rng, where, capsys):
    source = tmp_path / "a.png"
    PILImage.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(source)
    torch.set_num_threads(1)
    opts = ["--threads", "2"]
    tail = ["upscale", "--method", "bicubic", "-q", "-o", str(tmp_path / "out"), str(source)]
    argv = opts + tail if where == "before" else tail[:1] + opts + tail[1:]
    assert main(argv) == 0
    assert torch.get_num_threads() == 2
    assert (tmp_path / "out" / "a_x4.png").exists()
