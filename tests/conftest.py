import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # makes tests/loss_cases importable

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tigas"  # provenance: fixtures/README.md
TRAINED = Path(__file__).resolve().parent / "fixtures" / "tigas_trained"  # provenance: its README.md

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def tigas_fixtures() -> Path:
    """The upstream-made TIGAS fixtures (tests/fixtures/tigas)."""
    return FIXTURES


@pytest.fixture(scope="session")
def tigas_trained() -> Path:
    """The small trained fast-mode TIGAS checkpoint (tests/fixtures/tigas_trained)."""
    return TRAINED / "tigas_fast_trained.pt"


@pytest.fixture(scope="session")
def imageset(tmp_path_factory):
    """The seeded set of real photos and generated-looking images (tests/imageset), built once
    per session: an ``ImageSet`` whose ``folder("eval")`` is a ready ``--images`` folder."""
    from imageset import build_imageset

    return build_imageset(tmp_path_factory.mktemp("imageset"))


@pytest.fixture
def tiny_spec():
    """The test-only tiny scorer, registered for the duration of one test."""
    from tiny_model import TINY

    from lossport import catalog

    with catalog.registered(TINY):
        yield TINY
