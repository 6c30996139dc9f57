"""The ``cmdsr`` command line: ``main`` (parser, logging, exit codes) and one module per
sub-command. May import all of the engine; only ``python -m engine`` imports it."""

from engine.cli.main import main

__all__ = ["main"]
