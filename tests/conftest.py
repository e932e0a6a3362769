import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # makes tests/loss_cases importable

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tigas"  # provenance: fixtures/README.md

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def tigas_fixtures() -> Path:
    """The upstream-made TIGAS fixtures (tests/fixtures/tigas)."""
    return FIXTURES


@pytest.fixture
def tiny_spec():
    """The test-only tiny scorer, registered for the duration of one test."""
    from tiny_model import TINY

    from lossport import catalog

    with catalog.registered(TINY):
        yield TINY
