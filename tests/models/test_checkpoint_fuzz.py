"""TIGAS checkpoints are untrusted: property-based fuzzing of :func:`read_checkpoint`.

Random bytes, corrupted real checkpoints and forged state_dicts give a model or one
:class:`CheckpointError`; nothing in a file runs (``weights_only`` loading), and a refusal that
needs trust says how to give it.
"""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossport.errors import CheckpointError, ConfigError
from lossport.models.tigas.checkpoint import _needed_global, checkpoint_from_state_dict, read_checkpoint

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("ck") / "random.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


@FUZZ
@given(offset=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255), truncate=st.booleans())
def test_corrupted_real_checkpoint(tmp_path_factory, tigas_fixtures, offset, value, truncate):
    raw = bytearray((tigas_fixtures / "tigas_fast_small.pt").read_bytes())
    offset %= len(raw)
    if truncate:
        raw = raw[:offset]
    else:
        raw[offset] = value
    path = tmp_path_factory.mktemp("ck") / "corrupt.pt"
    path.write_bytes(bytes(raw))
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
        return
    try:
        checkpoint.build(num_attention_heads=4)
    except (CheckpointError, ConfigError) as exc:
        assert "\n" not in str(exc)


shapes = st.lists(st.integers(min_value=0, max_value=5), min_size=0, max_size=4).map(tuple)


@FUZZ
@given(
    state=st.dictionaries(
        st.sampled_from(
            [
                "perceptual_extractor.stem.0.weight",
                "perceptual_aggregator.0.weight",
                "aux_branch.x",
                "spectral_analyzer.y",
                "head.weight",
                "module.z",
            ]
        ),
        shapes,
        max_size=5,
    )
)
def test_forged_state_dicts(state):
    tensors = {key: torch.zeros(shape) for key, shape in state.items()}
    try:
        checkpoint = checkpoint_from_state_dict(tensors, "forged")
    except CheckpointError:
        return
    with pytest.raises((CheckpointError, ConfigError)):
        checkpoint.build()


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_a_pickle_that_runs_code_is_refused_and_never_run(tmp_path, legacy):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save(
        {"model_state_dict": {}, "x": _RunsCode(marker)}, path, _use_new_zipfile_serialization=not legacy
    )
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "message, needed",
    [
        (
            "WeightsUnpickler error: Unsupported global: GLOBAL __main__.Foo was not an allowed global",
            "__main__.Foo",
        ),
        ("Trying to load unsupported GLOBAL posix.system whose module posix is blocked.", "posix.system"),
        ("Unsupported operand 149", None),
    ],
)
def test_both_torch_wordings_of_a_refusal(message, needed):
    assert _needed_global(message) == needed


def test_shapes_asking_for_a_huge_model_are_refused_before_building(tmp_path):
    state = {
        "perceptual_extractor.stem.0.weight": torch.zeros(100000, 3, 1, 1),
        "perceptual_aggregator.0.weight": torch.zeros(65536, 1),
        "aux_branch.w": torch.zeros(1),
    }
    path = tmp_path / "huge.pt"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(CheckpointError, match="base_channels must be from 1 to 256"):
        read_checkpoint(path).build()
