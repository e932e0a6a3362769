"""Exportable models (registered as specs of kind ``"model"``)."""

from lossport.models import tigas  # noqa: F401  (registers the TIGAS specs)
