"""Start CMDSR Studio. Without a display, upscale the bundled sample and say where it went."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from cmdsr_app.app import run

    return run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
