"""Property tests (hypothesis) over shapes, dtypes and seeds for a representative subset of the
catalog: finite loss and gradient, float32 agreeing with float64, and reductions consistent
with each other."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossport import catalog
from lossport.spec.flatten import flatten_outputs

SUBSET = [
    "cross_entropy",
    "focal",
    "softmax_focal",
    "giou",
    "ciou",
    "dice",
    "tversky",
    "snr",
    "si_sdr",
    "rmse",
    "distillation",
    "tigas_combined",
    "keypoint",
]
PROPERTY_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _draw_sizes(data, spec, config):
    sizes = spec.sizes(0, config)
    for dim in spec.dynamic_dims(config):
        sizes[dim] = data.draw(st.integers(min_value=1, max_value=6), label=dim)
    return sizes


def _loss_and_grads(module, spec, inputs):
    inputs = [t.clone() for t in inputs]
    diff = [inputs[i].requires_grad_(True) for i, t in enumerate(spec.inputs) if t.differentiable]
    loss = flatten_outputs(module(*inputs))[spec.grad_output_index]
    grads = torch.autograd.grad(loss.sum(), diff, allow_unused=True) if diff else ()
    return loss.detach(), [g for g in grads if g is not None]


@pytest.mark.parametrize("name", SUBSET)
@PROPERTY_SETTINGS
@given(data=st.data(), seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_finite_and_precision_independent(name, data, seed):
    spec = catalog.get_spec(name)
    config = spec.resolve_config(dict(spec.test_config))
    sizes = _draw_sizes(data, spec, config)
    module = spec.instantiate(config)
    inputs64 = spec.sample_inputs(sizes, seed, dtype=torch.float64)
    loss64, grads64 = _loss_and_grads(module.double(), spec, inputs64)
    assert torch.isfinite(loss64).all(), (sizes, seed)
    assert all(torch.isfinite(g).all() for g in grads64), (sizes, seed)
    inputs32 = [t.float() if t.is_floating_point() else t for t in inputs64]
    loss32, _ = _loss_and_grads(module.float(), spec, inputs32)
    torch.testing.assert_close(loss32.double(), loss64, atol=1e-4, rtol=1e-3)


REDUCING = [n for n in SUBSET if "reduction" in catalog.get_spec(n).default_config()]


@pytest.mark.parametrize("name", REDUCING)
@PROPERTY_SETTINGS
@given(data=st.data(), seed=st.integers(min_value=0, max_value=2**31 - 1))
def test_reductions_agree(name, data, seed):
    """``sum`` equals the sum of ``none``; ``mean`` lies between the element min and max."""
    spec = catalog.get_spec(name)
    config = spec.resolve_config(dict(spec.test_config))
    sizes = _draw_sizes(data, spec, config)
    inputs = spec.sample_inputs(sizes, seed, dtype=torch.float64)
    per_element = {}
    for reduction in ("none", "sum", "mean"):
        module = spec.instantiate({**config, "reduction": reduction}).double()
        per_element[reduction] = flatten_outputs(module(*inputs))[0]
    none, total, mean = per_element["none"], per_element["sum"], per_element["mean"]
    torch.testing.assert_close(none.sum(), total, atol=1e-9, rtol=1e-9)
    if none.numel():
        assert none.min() - 1e-9 <= mean <= none.max() + 1e-9
