"""Entry point of the frozen CMDSR Studio (PyInstaller runs this as the program's main).

``--selftest`` is answered here, before Qt is touched, so an installed copy can be checked on a
machine with no display at all; everything else goes to the app's own start-up.
"""

from __future__ import annotations

import multiprocessing
import sys


def main() -> int:
    multiprocessing.freeze_support()  # data-loader workers re-enter the frozen program
    args = sys.argv[1:]
    if "--selftest" in args:
        from cmdsr_app.headless import selftest

        return selftest()
    from cmdsr_app.__main__ import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
