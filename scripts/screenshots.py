"""Render screenshots of CMDSR Studio's main views into docs/screenshots/ (offscreen).

Opens the bundled sample photo at a laptop's window size (1366x768), waits for the model's
reading of its damage, moves a damage knob and waits for its preview over the canvas (the
knobs and the Look slider in view), draws support regions (one deliberately too small, to show
how an invalid region is marked), previews the patches, upscales, and captures the input view,
the compare view (split and side by side), the batch tab and the Training tab.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--model PATH] [--out docs/screenshots]
        [--size 1366x768]

Without --model it uses the shipped default model; if that is missing too it makes a tiny
untrained one so the views can still be captured (the result then looks like noise). PNGs
larger than --max-kb are stored with a 256-colour palette so the README stays light.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAPTOP = (1366, 768)  # the window as a common laptop shows it
MAX_KB = 400
# One file per shot, in the order they are taken.
SHOTS = ("knobs_preview", "main_regions", "patches_preview", "compare_split",
         "compare_side_by_side", "batch", "training")


def spin(app: Any, condition: Callable[[], bool], timeout: float = 120.0, what: str = "") -> None:
    """Let the app work until ``condition`` holds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"the app did not get there in time{': ' + what if what else ''}")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def settle(app: Any, seconds: float) -> None:
    """Let timers (debounces) fire and their results arrive."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must read WIDTHxHEIGHT, e.g. 1366x768, not {text!r}") from None
    if width < 200 or height < 200:
        raise argparse.ArgumentTypeError(f"size {text} is too small for the window")
    return width, height


def save_png(image: Any, path: Path, max_kb: int) -> int:
    """Save a QImage as PNG, palettised when the full-colour file is over ``max_kb``; returns
    the file's size in bytes."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    rgb = Image.open(io.BytesIO(bytes(buffer.data().data()))).convert("RGB")
    rgb.save(path, optimize=True)
    if path.stat().st_size > max_kb * 1024:
        # Photos inside the window make big full-colour PNGs; 256 colours with dithering keep
        # the screenshot readable at a fraction of the size.
        rgb.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            path, optimize=True)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", type=Path, help="checkpoint to upscale with")
    parser.add_argument("--image", type=Path, help="photo to show (default: the bundled sample)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", type=window_size, default=LAPTOP,
                        help="window size, WIDTHxHEIGHT (default 1366x768)")
    parser.add_argument("--max-kb", type=int, default=MAX_KB,
                        help="PNGs over this size are palettised (default 400)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    scratch = Path(tempfile.mkdtemp(prefix="cmdsr-shots-"))
    os.environ["CMDSR_STUDIO_CONFIG_DIR"] = str(scratch / "config")  # never touch real settings

    import engine
    from engine import ModelConfig, build_model, default_model_path, sample_image_path, save_model

    model = args.model
    if model is None and default_model_path().exists():
        model = default_model_path()
    if model is None:
        print("no model given and the shipped one is missing: using an untrained tiny model")
        model = scratch / "untrained_x4.pt"
        save_model(build_model(ModelConfig(channels=16, blocks=2)), model)
    engine.default_model_path = lambda: Path(model)  # type: ignore[assignment]
    photo = args.image or sample_image_path()

    from PySide6.QtCore import QPointF
    from PySide6.QtWidgets import QApplication, QScrollArea

    from cmdsr_app.main_window import MainWindow, app_icon
    from cmdsr_app.state import Region

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())  # type: ignore[attr-defined]
    window = MainWindow()
    window.confirm_close = lambda: True  # type: ignore[method-assign]
    window.resize(*args.size)
    window.show()
    spin(app, lambda: window.models.info is not None, what="the model to load")
    if (window.width(), window.height()) != args.size:
        print(f"note: the window is {window.width()}x{window.height()}, not "
              f"{args.size[0]}x{args.size[1]} (its minimum size)")
    args.out.mkdir(parents=True, exist_ok=True)
    left_panel = window.left_dock.widget()
    assert isinstance(left_panel, QScrollArea)

    def shot(name: str) -> None:
        settle(app, 0.1)
        path = args.out / f"{name}.png"
        size = save_png(window.grab().toImage(), path, args.max_kb)
        print(f"wrote {path} ({size // 1024} KB)")

    readings: list[object] = []
    window.damage.readingShown.connect(readings.append)

    def read_damage(action: Callable[[], None]) -> None:
        """Do ``action`` and wait until the damage panel shows the reading that follows it."""
        before = len(readings)
        action()
        spin(app, lambda: len(readings) > before, what="the damage reading")
        settle(app, 0.3)  # a debounced second reading (more changes) would start now
        spin(app, lambda: not window.damage.estimates.busy, what="the damage reading")

    loaded: list[str] = []
    window.imageLoaded.connect(loaded.append)
    read_damage(lambda: window.open_paths([photo]))
    spin(app, lambda: bool(loaded))
    image = window.photos.image
    h, w = image.height, image.width

    # The knobs: the damage box has read the whole photo; the noise knob moves as a user would
    # type it, and its preview of the part in view is painted on the canvas.
    knobs = window.damage_panel.knobs
    left_panel.ensureWidgetVisible(window.look_panel)
    if knobs.available and knobs.noise.spin.isEnabled():
        shown: list[object] = []
        window.knobs.previewShown.connect(shown.append)
        window.canvas.fit()
        noise = knobs.noise.spin
        noise.setValue(min(noise.maximum(), noise.value() + 20))
        spin(app, lambda: bool(shown), timeout=300, what="the knob preview")
        shot("knobs_preview")
        knobs.reset_button.click()  # the runs below read the photo again
    else:
        print(f"skipped knobs_preview: this model has no damage knobs ({knobs.origin.text()})")
    left_panel.verticalScrollBar().setValue(0)

    # Two good regions on textured parts and one too small to hold a patch (low on the left,
    # where the sample is plain green, so its red outline shows).
    def add_regions() -> None:
        window.regions.add(Region(w // 10, h // 8, max(40, w // 4), max(40, h // 4)))
        window.regions.add(Region(w // 2, h // 2, max(40, w // 3), max(40, h // 3)))
        window.regions.add(Region(w // 20, int(h * 0.78), 20, 18))
        window.regions.select(1)

    read_damage(add_regions)
    shot("main_regions")

    window.regions.remove(2)
    previews: list[None] = []
    window.previewReady.connect(lambda: previews.append(None))
    window.preview_patches("regions")
    spin(app, lambda: bool(previews), what="the patch preview")
    shot("patches_preview")

    finished: list[str] = []
    window.upscaleFinished.connect(finished.append)
    window.run_upscale()
    spin(app, lambda: "cmdsr" in finished, timeout=600, what="the upscale")
    compare = window.compare
    canvas = compare.split_canvas
    canvas.fit()
    # Zoom on the middle so the difference is visible.
    canvas.zoom_at(2.5, QPointF(canvas.width() / 2, canvas.height() / 2))
    canvas.set_split_fraction(0.5)
    shot("compare_split")

    compare.set_sources("bicubic", "cmdsr")  # bicubic is computed on demand
    spin(app, lambda: "bicubic" in finished, what="the bicubic side")
    compare.set_mode("side")
    compare.left_canvas.fit()
    compare.left_canvas.zoom_at(2.0, QPointF(compare.left_canvas.width() / 2,
                                             compare.left_canvas.height() / 2))
    shot("compare_side_by_side")

    broken = scratch / "scan_0042.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")
    window.open_paths([broken])
    window.batch_panel.folder_edit.setText(str(scratch / "out"))
    reports: list[object] = []
    window.batchFinished.connect(reports.append)
    window.start_batch()
    spin(app, lambda: bool(reports), timeout=600, what="the batch")
    if window.error_dialog is not None:  # the broken file's dialog is not part of the view
        window.error_dialog.close()
    shot("batch")

    if window.training_tab is not None:
        window.tabs.setCurrentWidget(window.training_page)
        shot("training")

    window.close()
    window.deleteLater()
    return 0


if __name__ == "__main__":
    sys.exit(main())
