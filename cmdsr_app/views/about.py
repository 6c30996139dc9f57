"""What Help → About says: the version, the shipped model and its card, and the licences."""

from __future__ import annotations

import html
import re
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

APP_LICENCE = "MIT"
THIRD_PARTY = (
    ("Qt for Python (PySide6)", "LGPL-3.0"),
    ("PyTorch", "BSD-3-Clause"),
    ("NumPy, OpenCV, Pillow", "BSD / Apache-2.0 / HPND"),
)


def app_version() -> str:
    """The installed package's version, or the source tree's when run from a checkout."""
    from importlib import metadata

    try:
        return metadata.version("cmdsr-studio")
    except metadata.PackageNotFoundError:
        return "development copy"


def model_card_path() -> Path:
    """The shipped model's card (a Markdown file beside the weights)."""
    from engine.resources import DEFAULT_MODEL_NAME, resources_dir

    return (resources_dir() / "models" / DEFAULT_MODEL_NAME).with_suffix(".md")


def about_html() -> str:
    """Short: the version, the shipped model in one sentence for users (the card's own first
    lines are notes for whoever trains the next model), the licences, a link to the full card."""
    card = model_card_path()
    scale = re.search(r"x(\d+)$", card.stem)
    parts = [
        f"<h3>CMDSR Studio {html.escape(app_version())}</h3>",
        "<p>Blind super-resolution of degraded photos with CMDSR, a network that reads how "
        "each photo was damaged from patches of the photo itself.</p>",
    ]
    if card.is_file():
        times = f"×{scale.group(1)} " if scale else ""
        parts.append(f"<p><b>Model:</b> {html.escape(card.stem)}.pt, the {times}model that comes "
                     "with the app; its card says what it was trained on and how well it does. "
                     f'<a href="{card.as_uri()}">Full model card</a></p>')
    else:
        parts.append("<p>The shipped model and its card are missing from this installation.</p>")
    licences = ", ".join(f"{html.escape(n)} ({html.escape(lic)})" for n, lic in THIRD_PARTY)
    parts.append(f"<p><b>Licence:</b> {APP_LICENCE}. It uses {licences}.</p>")
    return "".join(parts)


def open_about_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    """The About box (rich text, links clickable), opened without blocking the event loop."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok,
                      parent)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    box.open()
    return box
