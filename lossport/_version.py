"""The lossport version (one place; ``lossport.__version__`` re-exports it)."""

__version__ = "0.2.0"
