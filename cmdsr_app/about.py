"""What Help → About says: the version, the shipped model and its card, and the licences."""

from __future__ import annotations

import html
from pathlib import Path

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


def model_card_summary(card: Path) -> str:
    """The card's first paragraph after its title ('' when there is no card)."""
    try:
        text = card.read_text(encoding="utf-8")
    except OSError:
        return ""
    paragraph: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            if paragraph:
                break
            continue
        if not line.strip():
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return " ".join(paragraph).replace("**", "")


def about_html() -> str:
    card = model_card_path()
    summary = model_card_summary(card)
    parts = [
        f"<h3>CMDSR Studio {html.escape(app_version())}</h3>",
        "<p>Blind super-resolution of degraded photos with CMDSR, a network that reads how "
        "each photo was damaged from patches of the photo itself.</p>",
    ]
    if summary:
        parts.append(f"<p><b>Shipped model</b> ({html.escape(card.stem)}.pt): "
                     f"{html.escape(summary)}</p>")
    if card.is_file():
        parts.append(f'<p>Model card: <a href="{card.as_uri()}">{html.escape(str(card))}</a></p>')
    else:
        parts.append("<p>The shipped model and its card are missing from this installation.</p>")
    licences = "".join(f"<li>{html.escape(n)}: {html.escape(lic)}</li>" for n, lic in THIRD_PARTY)
    parts.append(f"<p>CMDSR Studio is released under the {APP_LICENCE} licence. "
                 f"It uses:</p><ul>{licences}</ul>")
    return "".join(parts)
