"""The edge process for the end-to-end tests: ``e2e_edge_main.py --config EDGE.toml [--stamps FILE]``.

Exactly what ``genius --strict edge run --config EDGE.toml`` runs (settings from the TOML, the
registry's adapter sessions, ``edge.serve`` until SIGTERM), with one test seam: given
``--stamps``, each adapter session is wrapped in ``StampedSession`` so readings carry the
simulator's time (see ``e2e_simtime``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from devices.registry import load_registry
from e2e_simtime import StampedSession, load_stamps
from edge import EdgeSettings, serve


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="e2e_edge_main")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--stamps", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EdgeSettings.load(args.config)
    sessions = load_registry(strict=True).sessions(settings.adapters)
    if args.stamps is not None:
        stamps = load_stamps(args.stamps)
        sessions = [StampedSession(s, stamps) for s in sessions]
    asyncio.run(serve(settings, sessions=sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
