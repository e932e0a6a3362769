"""Exportable models (registered as specs of kind ``"model"``)."""
