"""Registry-parametrised tests every loss must pass: a new loss cannot skip them.

Per loss: hand-computed values, peer parity (float64), bad-input errors, gradcheck (float64),
finite loss and gradient at every edge case, TorchScript parity, and the spec's own
consistency (shapes, samplers, outputs).
"""

from __future__ import annotations

import importlib.util
import re

import pytest
import torch
from loss_cases import bad_cases, hand_cases, peers

from lossport import catalog
from lossport.errors import InvalidInputError, LossportError
from lossport.spec.flatten import flatten_outputs

CATALOG = [
    "cross_entropy",
    "focal",
    "softmax_focal",
    "focal_pixelwise",
    "varifocal",
    "mtp",
    "distillation",
    "lwf",
    "giou",
    "diou",
    "ciou",
    "centerness",
    "fcos",
    "dfl",
    "centernet",
    "detection",
    "keypoint",
    "heatmap",
    "dice",
    "iou",
    "tversky",
    "mask",
    "combined_segmentation",
    "mel",
    "snr",
    "si_sdr",
    "rmse",
    "tigas_combined",
]

LOSSES = [s.name for s in catalog.all_specs("loss")]
HAND = hand_cases()
BAD = bad_cases()
PEERS = peers()


def _test_config(spec):
    return spec.resolve_config(dict(spec.test_config))


def _run(spec, config, inputs, build=None):
    module = build() if build is not None else spec.instantiate(spec.resolve_config(config))
    return dict(zip(spec.outputs, flatten_outputs(module(*inputs))))


def test_catalog_is_registered():
    missing = sorted(set(CATALOG) - set(LOSSES))
    assert not missing, f"losses of LOSSES.md not registered: {missing}"


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_has_cases(name):
    assert HAND.get(name), f"{name}: no hand-computed cases in tests/loss_cases"
    assert BAD.get(name), f"{name}: no bad-input cases in tests/loss_cases"
    assert name in PEERS, f"{name}: no peer entry (Peer.none(reason) if there is none)"


@pytest.mark.parametrize("name", LOSSES)
def test_hand_values(name):
    spec = catalog.get_spec(name)
    for case in HAND.get(name, []):
        got = _run(spec, case.config, case.inputs, case.build)
        for output, expected in case.expected.items():
            value = got[output]
            assert torch.allclose(
                value.double(), torch.as_tensor(expected, dtype=torch.float64), atol=case.atol, rtol=1e-6
            ), f"{name} {case.note or case.config}: {output} = {value.tolist()}, expected {expected}"


@pytest.mark.parametrize("name", LOSSES)
def test_bad_input(name):
    spec = catalog.get_spec(name)
    for case in BAD.get(name, []):
        error = case.error or InvalidInputError
        with pytest.raises(error, match=case.match):
            _run(spec, case.config, case.inputs)


@pytest.mark.parametrize("name", LOSSES)
def test_peer_parity(name):
    spec = catalog.get_spec(name)
    peer = PEERS.get(name)
    if peer is None or peer.reference is None:
        pytest.skip(f"{name}: no peer ({peer.reason if peer else 'missing'})")
    if importlib.util.find_spec(peer.module) is None:
        pytest.skip(f"{name}: peer package {peer.module} is not installed")
    for config in peer.configs:
        resolved = spec.resolve_config(config)
        for index in range(len(spec.shapes)):
            inputs = spec.sample_inputs(spec.sizes(index, resolved), seed=100 + index, dtype=torch.float64)
            ours = _run(spec, config, inputs)
            theirs = peer.reference(resolved, inputs)
            for output, expected in theirs.items():
                torch.testing.assert_close(
                    ours[output].double(),
                    expected.double(),
                    atol=1e-9,
                    rtol=1e-7,
                    msg=lambda m: f"{name} {config} {output}: {m}",
                )


def _grad_inputs(spec, inputs):
    return [i for i, t in enumerate(spec.inputs) if t.differentiable]


@pytest.mark.parametrize("name", LOSSES)
def test_gradcheck(name):
    spec = catalog.get_spec(name)
    config = _test_config(spec)
    module = spec.instantiate(config).double()
    inputs = list(spec.sample_inputs(spec.sizes(0, config), seed=7, dtype=torch.float64))
    positions = _grad_inputs(spec, inputs)
    if not positions:
        pytest.skip(f"{name} has no differentiable input")
    if not spec.exact_gradient:
        pytest.skip(f"{name} stops a gradient by definition (see its docstring)")

    def fn(*diff):
        full = list(inputs)
        for pos, value in zip(positions, diff):
            full[pos] = value
        return flatten_outputs(module(*full))

    diff = [inputs[p].detach().clone().requires_grad_(True) for p in positions]
    assert torch.autograd.gradcheck(fn, diff, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize("name", LOSSES)
def test_edge_cases_finite(name):
    spec = catalog.get_spec(name)
    cases = spec.edge_inputs(torch.float32)
    assert cases, f"{name} declares no edge cases"
    module = spec.instantiate(_test_config(spec))
    for case, inputs in cases.items():
        inputs = [t.detach().clone() for t in inputs]
        diff = [inputs[i].requires_grad_(True) for i in _grad_inputs(spec, inputs)]
        outputs = flatten_outputs(module(*inputs))
        for out_name, value in zip(spec.outputs, outputs):
            assert torch.isfinite(value).all(), f"{name}/{case}: {out_name} = {value}"
        if diff:
            grads = torch.autograd.grad(outputs[0].sum(), diff, allow_unused=True)
            for g in grads:
                assert g is None or torch.isfinite(g).all(), f"{name}/{case}: non-finite gradient"


@pytest.mark.parametrize("name", LOSSES)
def test_torchscript_matches_eager(name):
    spec = catalog.get_spec(name)
    config = _test_config(spec)
    module = spec.instantiate(config)
    scripted = torch.jit.script(module)
    for index in range(len(spec.shapes)):
        inputs = spec.sample_inputs(spec.sizes(index, config), seed=3 + index)
        expected = flatten_outputs(module(*inputs))
        got = flatten_outputs(scripted(*inputs))
        assert len(got) == len(expected) == len(spec.outputs)
        for out_name, a, b in zip(spec.outputs, got, expected):
            torch.testing.assert_close(
                a, b, atol=1e-6, rtol=1e-5, msg=lambda m: f"{name} shape {index} {out_name}: {m}"
            )


@pytest.mark.parametrize("name", LOSSES)
def test_spec_is_consistent(name):
    spec = catalog.get_spec(name)
    config = _test_config(spec)
    for sizes in spec.shapes:
        assert set(sizes) >= set(spec.dynamic_dims(config)), f"{name}: {sizes} misses a dim"
    export = spec.shapes[0]
    for value in export.values():
        assert value >= 2, f"{name}: export sizes must be >= 2 so no axis is specialised"
    fixed = {
        d if isinstance(d, int) else config[d]
        for t in spec.inputs
        for d in t.shape
        if isinstance(d, int) or d in config
    }
    sizes = {export[d] for d in spec.dynamic_dims(config)}
    assert not sizes & fixed, (
        f"{name}: export sizes {export} must differ from the fixed dims {sorted(fixed)}, or "
        f"the tracer may merge a dynamic axis with a fixed one and specialise it"
    )
    inputs = spec.sample_inputs(spec.sizes(0, config), seed=0)
    assert len(inputs) == len(spec.inputs)
    for tensor, value in zip(spec.inputs, inputs):
        assert tuple(value.shape) == spec.concrete_shape(tensor, spec.sizes(0, config)), tensor.name
        assert value.is_floating_point() == tensor.domain.is_float, tensor.name
    assert len(set(spec.outputs)) == len(spec.outputs), f"{name}: output names repeat"


def test_unknown_name_suggests():
    with pytest.raises(LossportError, match=re.escape("did you mean focal")):
        catalog.get_spec("focall")


def test_config_override_checks_key_and_type():
    spec = catalog.get_spec("rmse")
    assert spec.resolve_config({"eps": "0.5"})["eps"] == 0.5
    with pytest.raises(LossportError, match="no setting 'epsilon'"):
        spec.resolve_config({"epsilon": 1})
    with pytest.raises(LossportError, match="not a valid float"):
        spec.resolve_config({"eps": "abc"})
