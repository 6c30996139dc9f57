"""Render screenshots of CMDSR Studio's main views into docs/screenshots/ (offscreen).

Opens the bundled sample photo, draws support regions (one deliberately too small, to show
how an invalid region is marked), previews the patches, upscales, and captures the input
view, the compare view (split and side by side), the batch tab and the Training tab.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py [--model PATH] [--out docs/screenshots]

Without --model it uses the shipped default model; if that is missing too it makes a tiny
untrained one so the views can still be captured (the result then looks like noise).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT = 1440, 880


def spin(app, condition: Callable[[], bool], timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(5):
        app.processEvents()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="checkpoint to upscale with")
    parser.add_argument("--image", type=Path, help="photo to show (default: the bundled sample)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
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
    from PySide6.QtWidgets import QApplication

    from cmdsr_app.main_window import MainWindow, app_icon
    from cmdsr_app.state import Region

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(app_icon())  # type: ignore[attr-defined]
    window = MainWindow()
    window.confirm_close = lambda: True  # type: ignore[method-assign]
    window.resize(WIDTH, HEIGHT)
    window.show()
    spin(app, lambda: window.models.info is not None)
    args.out.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        for _ in range(10):
            app.processEvents()
        path = args.out / f"{name}.png"
        window.grab().save(str(path))
        print(f"wrote {path}")

    loaded: list[str] = []
    window.imageLoaded.connect(loaded.append)
    window.open_paths([photo])
    spin(app, lambda: bool(loaded))
    image = window.photos.image
    h, w = image.height, image.width
    # Two good regions on textured parts and one too small to hold a patch.
    window.regions.add(Region(w // 10, h // 8, max(40, w // 4), max(40, h // 4)))
    window.regions.add(Region(w // 2, h // 2, max(40, w // 3), max(40, h // 3)))
    window.regions.add(Region(int(w * 0.7), h // 10, 20, 18))
    window.regions.select(1)
    shot("main_regions")

    window.regions.remove(2)
    previews: list[None] = []
    window.previewReady.connect(lambda: previews.append(None))
    window.preview_patches("regions")
    spin(app, lambda: bool(previews))
    shot("patches_preview")

    finished: list[str] = []
    window.upscaleFinished.connect(finished.append)
    window.run_upscale()
    spin(app, lambda: "cmdsr" in finished, timeout=600)
    compare = window.compare
    canvas = compare.split_canvas
    canvas.fit()
    # Zoom on the middle so the difference is visible.
    canvas.zoom_at(2.5, QPointF(canvas.width() / 2, canvas.height() / 2))
    canvas.set_split_fraction(0.5)
    shot("compare_split")

    compare.set_sources("bicubic", "cmdsr")  # bicubic is computed on demand
    spin(app, lambda: "bicubic" in finished)
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
    spin(app, lambda: bool(reports), timeout=600)
    shot("batch")

    if window.training_tab is not None:
        window.tabs.setCurrentWidget(window.training_page)
        shot("training")

    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
