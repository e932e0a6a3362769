"""Integrations with other frameworks, each an optional extra: :mod:`.ray` (``lossport[ray]``)."""
