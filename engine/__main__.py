"""``python -m engine`` runs the ``cmdsr`` command line."""

import sys

from engine.cli import main

sys.exit(main())
