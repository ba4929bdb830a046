"""``python -m hub --broker URL --db PATH [--config hub.toml]``: the hub as a plain process."""

import sys

from .entry import main

sys.exit(main())
