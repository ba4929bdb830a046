"""Run an edge agent as its own process for the kill -9 tests: ``edge_process.py CONFIG ROOT``.

The agent is configured from the TOML file like ``genius edge run --config``; its adapter
session is the test device definition on ``ROOT/+/state`` (injected, as the CLI injects the
registry's sessions).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from devices import DefinitionsAdapter
from edge import EdgeSettings, serve
from edge_testkit import multi_sensor


def main(config: str, root: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = EdgeSettings.load(config)
    sessions = [DefinitionsAdapter.of([multi_sensor(root)]).new_session()]
    asyncio.run(serve(settings, sessions=sessions))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
