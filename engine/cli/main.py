"""``cmdsr``: the command-line interface (upscale, train, eval, degrade, inspect).

Each subcommand's options live in a module exposing ``add_parser(subparsers)``; those modules
import nothing heavy at import time (PyTorch is imported by the command that runs), so help
and usage errors answer at once. This module wires them, sets up logging and turns errors into one-line messages and exit codes:
0 all done, 2 usage or input errors, 1 internal error.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from engine.errors import CmdsrError

log = logging.getLogger(__name__)

# Each module adds one or more subparsers and sets ``func`` on them.
SUBCOMMAND_MODULES = ("engine.cli.upscale_args", "engine.cli.train", "engine.cli.inspect")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
MAX_THREADS = 1024


def thread_count(text: str) -> int:
    """``--threads`` value: a whole number of CPU threads, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads, got {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_THREADS}, got {value}")
    return value


def _threads_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--threads", type=thread_count, metavar="N", default=default,
                        help="CPU threads for PyTorch (default: one per core)")


def common_options() -> argparse.ArgumentParser:
    """Parent parser for every subcommand, so ``--debug``/``--quiet`` work after it too."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    parent.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only warnings and errors")
    _threads_option(parent, argparse.SUPPRESS)
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmdsr",
        description="CMDSR Studio: blind super-resolution that adapts to each photo.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    _threads_option(parser, None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # a subcommand not built yet in this checkout
        module.add_parser(sub)
    return parser


def lazy_command(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """A sub-command's ``func`` that imports ``module`` only when the command runs, so an
    options module (``upscale_args``) never imports the code that runs it."""

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(module), function)(args))

    return run


def _setup_logging(debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    debug = debug or bool(getattr(args, "debug", False))
    _setup_logging(debug, bool(getattr(args, "quiet", False)))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
        log.debug("using %d CPU thread(s)", args.threads)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("cmdsr: interrupted", file=sys.stderr)
        return 130
    except CmdsrError as exc:
        if debug:
            log.exception("error")
        print(f"cmdsr: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a full disk or a read-only folder: the user's to fix, not a bug
        if debug:
            log.exception("error")
        where = f": {exc.filename}" if exc.filename else ""
        hint = {errno.ENOSPC: " (free some disk space, then run again)",
                errno.EACCES: " (check that the folder is writable)",
                errno.EROFS: " (the disk is read-only)"}.get(exc.errno or 0, "")
        print(f"cmdsr: error: {exc.strerror or exc}{where}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # last resort: one line for users, the traceback with --debug
        if debug:
            log.exception("internal error")
        print(f"cmdsr: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
