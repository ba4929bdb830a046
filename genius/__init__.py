"""The ``genius`` command line (the only place, with simulations, that may import every package)."""
