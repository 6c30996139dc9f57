"""CMDSR Studio without a window: the sample run used when there is no display, and the
``--selftest`` an installed copy runs to prove it works (the packaging test runs it on the
frozen bundle and on the installed .deb).

Both print short lines for a person at a terminal and return a process exit code.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cmdsr_app.settings import APP_AUTHOR, APP_NAME

if TYPE_CHECKING:
    from engine import CMDSR
    from engine.io.imageio import Image

log = logging.getLogger(__name__)

SAMPLE_OUTPUT_NAME = "sample_x{scale}.png"
# A working model stays close to bicubic on a mildly degraded photo (about 25-35 dB); a
# broken bundle (wrong weights, bad kernels, garbage memory) lands far below.
MIN_PSNR_VS_BICUBIC = 20.0
EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


def _say(line: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    if stream is not None:  # a windowed program on Windows may have no console at all
        print(line, file=stream, flush=True)  # noqa: T201 (this is a console front end)


def default_output_dir() -> Path:
    """Where the sample result goes: the user's data folder for the app, under outputs/."""
    import appdirs

    return Path(appdirs.user_data_dir(APP_NAME, APP_AUTHOR)) / "outputs"


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shape arrays in 0..peak (inf when identical)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _upscale_sample(model_path: Path, sample_path: Path) -> tuple[CMDSR, Image, np.ndarray]:
    """(model, input Image, output pixels) for the bundled sample with the default support."""
    from engine import load_model
    from engine.inference.support import select_support
    from engine.inference.upscaler import Upscaler
    from engine.io.imageio import read_image

    model = load_model(model_path, device="cpu")
    image = read_image(sample_path)
    method = "cmdsr" if model.conditioned else "baseline"
    upscaler = Upscaler(model, method=method, device="cpu")
    support = None
    if upscaler.needs_support:
        support = select_support(image.pixels, count=model.support_size, size=32,
                                 mode="random", seed=0)
    return model, image, upscaler.upscale(image.pixels, support)


def run_sample(out_dir: Path | None = None) -> int:
    """Upscale the bundled sample photo with the default model and say where the result is.

    For a start with no display (a server, a terminal session): proves the install works and
    leaves a result to look at. Returns 0, or 2 (a problem the user can fix) / 1 (a bug) with
    a one-line message.
    """
    from dataclasses import replace

    from engine import CmdsrError, default_model_path, sample_image_path
    from engine.io.imageio import write_image

    try:
        model, image, pixels = _upscale_sample(default_model_path(), sample_image_path())
        folder = Path(out_dir) if out_dir is not None else default_output_dir()
        target = folder / SAMPLE_OUTPUT_NAME.format(scale=model.scale)
        # The sample's result is the app's own file: a second run replaces the first.
        written = write_image(replace(image, pixels=pixels, alpha=None), target, fmt="png",
                              overwrite=True)
    except CmdsrError as exc:
        _say(f"error: {exc}", error=True)
        return EXIT_USAGE
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _say(f"error: {exc.strerror or exc}{where}", error=True)
        return EXIT_USAGE
    except Exception as exc:
        log.debug("sample run failed", exc_info=True)
        _say(f"error: unexpected {type(exc).__name__}: {exc}", error=True)
        return EXIT_INTERNAL
    _say(f"No display found: upscaled the sample photo x{model.scale} to {written}")
    return EXIT_OK


# --------------------------------------------------------------------------- self-test
class _Fail(Exception):
    """A self-test check found a wrong result (as opposed to crashing)."""


class _Checks:
    """Runs named checks, printing one PASS/FAIL line each; a failure never stops the rest."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.count = 0

    def run(self, name: str, check: Callable[[], str]) -> bool:
        from engine import CmdsrError

        self.count += 1
        started = time.perf_counter()
        try:
            detail = check()
        except Exception as exc:
            log.debug("self-test check %s failed", name, exc_info=True)
            self.failed.append(name)
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if not isinstance(exc, (_Fail, CmdsrError)):
                message = f"{type(exc).__name__}: {message}"
            _say(f"FAIL {name}: {message}")
            return False
        _say(f"PASS {name}: {detail} ({time.perf_counter() - started:.1f} s)")
        return True


def _check_upscale(model_path: Path, sample_path: Path) -> str:
    model, image, out = _upscale_sample(model_path, sample_path)
    h, w = image.height, image.width
    s = model.scale
    if out.shape != (h * s, w * s, 3):
        raise _Fail(f"output is {out.shape}, expected {(h * s, w * s, 3)}")
    if not np.isfinite(out).all():
        raise _Fail("output has NaN or infinite values")
    if float(out.std()) < 1.0:
        raise _Fail(f"output is flat (std {out.std():.2f})")
    from engine.inference.upscaler import bicubic

    score = psnr(out, bicubic(image.pixels, s))
    if not score >= MIN_PSNR_VS_BICUBIC:
        raise _Fail(f"output is far from the picture: PSNR {score:.1f} dB against bicubic "
                    f"(at least {MIN_PSNR_VS_BICUBIC:.0f} dB expected)")
    return f"{w}x{h} -> {w * s}x{h * s}, PSNR {score:.1f} dB against bicubic"


def _check_training() -> str:
    """One optimiser step on a tiny network: autograd, optimisers and what they load lazily
    are in the bundle (the Training tab needs them)."""
    import torch
    import torch.nn.functional as F

    from engine import ModelConfig, build_model

    gen = torch.Generator().manual_seed(0)
    model = build_model(ModelConfig(scale=2, channels=4, blocks=1, support_size=2, cond_channels=4))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(2, 3, 8, 8, generator=gen) * 255
    support = torch.rand(2, 2, 3, 8, 8, generator=gen) * 255
    target = F.interpolate(lr, scale_factor=2, mode="nearest")
    optimiser.zero_grad()
    loss = F.l1_loss(model(lr, support), target)
    loss.backward()
    optimiser.step()
    value = float(loss.detach())
    if not math.isfinite(value):
        raise _Fail(f"loss is {value}")
    return "one Adam step on a tiny network"


def _check_qt() -> str:
    """The GUI toolkit and its plugins load (offscreen, so it needs no display)."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice
    from PySide6.QtGui import QGuiApplication, QImage, QImageReader
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        # Offscreen keeps the check headless and never aborts on a missing X server; a full
        # QApplication, so the widgets library is checked too.
        app = QApplication(["cmdsr-studio", "-platform", "offscreen"])
    formats = {bytes(f.data()).decode() for f in QImageReader.supportedImageFormats()}
    missing = {"png", "jpeg"} - formats
    if missing:
        raise _Fail(f"Qt cannot read {', '.join(sorted(missing))} (image format plugins missing)")
    image = QImage(8, 8, QImage.Format.Format_RGB888)
    image.fill(0x3366CC)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "JPEG") or data.size() == 0:  # type: ignore[call-overload]
        raise _Fail("Qt could not encode a JPEG")
    return f"platform {QGuiApplication.platformName()}, {len(formats)} image formats"


def selftest() -> int:
    """Check an installation: load the default model, upscale the bundled sample and check the
    result; then the training machinery and the GUI toolkit. Prints one PASS/FAIL line per
    check; returns 0 when all pass, else 1."""
    logging.getLogger("engine").setLevel(logging.WARNING)
    from engine import default_model_path, sample_image_path
    from engine.resources import resources_dir

    frozen = "frozen bundle" if getattr(sys, "frozen", False) else "Python environment"
    _say(f"CMDSR Studio self-test ({frozen}, resources in {resources_dir()})")
    model_path, sample_path = default_model_path(), sample_image_path()
    checks = _Checks()

    def check_model() -> str:
        from engine import load_model

        model = load_model(model_path, device="cpu")
        cfg = model.config
        kind = f"{cfg.support_size} support patches" if cfg.conditioning else "conditioning off"
        blocks = f"{cfg.blocks} block{'s' if cfg.blocks != 1 else ''}"
        return f"{model_path.name}: x{cfg.scale}, {cfg.channels} channels, {blocks}, {kind}"

    def check_sample() -> str:
        from engine.io.imageio import read_image

        image = read_image(sample_path)
        return f"{sample_path.name}: {image.width}x{image.height}"

    model_ok = checks.run("default model", check_model)
    sample_ok = checks.run("sample photo", check_sample)
    if model_ok and sample_ok:
        checks.run("upscale", lambda: _check_upscale(model_path, sample_path))
    else:
        checks.count += 1
        checks.failed.append("upscale")
        _say("FAIL upscale: skipped (needs the default model and the sample photo)")
    checks.run("training", _check_training)
    checks.run("qt", _check_qt)
    if checks.failed:
        _say(f"self-test FAILED: {len(checks.failed)} of {checks.count} checks "
             f"({', '.join(checks.failed)})")
        return 1
    _say(f"self-test passed: {checks.count} checks")
    return 0
