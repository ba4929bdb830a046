"""Real labelled datasets imported into the one dataset format (``models.dataset``).

The data stay where they are (``../shared/datasets``); only the converted dataset is written,
to a directory the caller names. Never copy real data into the repository.
"""

from .aras import import_aras
from .ordonez import import_ordonez

__all__ = ["import_aras", "import_ordonez"]
