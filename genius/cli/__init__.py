"""``genius``: one command, subcommands registered by small modules beside this one.

Each module ``genius/cli/<area>.py`` defines ``register(subparsers)``; its handlers receive the
parsed ``argparse.Namespace`` and return an exit code. Modules are imported lazily by name so
a broken area does not take the whole command down, and ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from devices.errors import GeniusError

__all__ = ["main"]

# area module -> top-level subcommands it registers (for ordering and a clear error if missing)
AREAS = ("edge", "hub", "simulate", "dataset", "train", "evaluate", "demo", "customer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genius", description="Anticipate the job a customer wants done next.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--strict", action="store_true", help="broken device plugins are fatal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for area in AREAS:
        try:
            module = importlib.import_module(f"genius.cli.{area}")
        except ModuleNotFoundError as exc:
            if exc.name == f"genius.cli.{area}":
                continue  # that area is not built yet
            raise
        module.register(sub)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except GeniusError as exc:
        print(f"genius: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
