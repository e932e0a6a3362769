"""TIGAS CombinedLoss beyond the catalog: the vectorised ranking term against an explicit pair
loop, missing classes, and the fail-fast checks in eager mode, TorchScript and export."""

import pytest
import torch
import torch.nn.functional as F

from lossport.losses import CombinedLoss, pairwise_ranking_loss


def _batch(size, seed, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.rand(size, generator=generator, dtype=dtype)
    logits = torch.randn(size, 2, generator=generator, dtype=dtype)
    labels = torch.rand(size, generator=generator, dtype=dtype)
    return scores, logits, labels


def _pair_loop(scores, labels, margin):
    real = [i for i in range(len(scores)) if labels[i] > 0.5]
    fake = [j for j in range(len(scores)) if labels[j] <= 0.5]
    if not real or not fake:
        return (scores * 0).sum()
    terms = [
        F.margin_ranking_loss(
            scores[i : i + 1], scores[j : j + 1], torch.ones_like(scores[:1]), margin=margin
        )
        for i in real
        for j in fake
    ]
    return torch.stack(terms).mean()


@pytest.mark.parametrize("size, seed, margin", [(2, 0, 0.5), (7, 1, 0.5), (16, 2, 0.1), (33, 3, 1.0)])
def test_ranking_matches_explicit_pair_loop_value_and_gradient(size, seed, margin):
    scores, _, labels = _batch(size, seed)
    scores.requires_grad_(True)
    ours = pairwise_ranking_loss(scores, labels > 0.5, margin)
    expected = _pair_loop(scores, labels, margin)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-10)
    (grad_ours,) = torch.autograd.grad(ours, scores)
    (grad_loop,) = torch.autograd.grad(expected, scores)
    torch.testing.assert_close(grad_ours, grad_loop, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("labels", [[1.0, 0.9, 0.51], [0.0, 0.5, 0.2]])
def test_missing_class_gives_zero_ranking_and_zero_ranking_gradient(labels):
    scores = torch.tensor([0.1, 0.5, 0.9], requires_grad=True)
    loss = pairwise_ranking_loss(scores, torch.tensor(labels) > 0.5)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(scores.grad, torch.zeros(3))


def test_components_are_returned_in_order_and_total_is_weighted_sum():
    scores, logits, labels = _batch(9, 4)
    total, parts = CombinedLoss(regression_weight=2.0, classification_weight=0.5, ranking_weight=3.0)(
        scores, logits, labels
    )
    assert list(parts) == ["regression", "classification", "ranking", "total"]
    torch.testing.assert_close(
        total, 2.0 * parts["regression"] + 0.5 * parts["classification"] + 3.0 * parts["ranking"]
    )
    assert parts["total"] is total


@pytest.mark.parametrize("index, name", [(0, "scores"), (1, "logits"), (2, "labels")])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_inputs_raise_runtime_error_in_eager_and_torchscript(index, name, bad):
    inputs = list(_batch(4, 5, dtype=torch.float32))
    inputs[index] = inputs[index].clone()
    inputs[index].view(-1)[1] = bad
    module = CombinedLoss()
    with pytest.raises(RuntimeError, match=f"NaN/Inf detected in {name}"):
        module(*inputs)
    # TorchScript raises the same RuntimeError, surfacing in Python as torch.jit.Error
    with pytest.raises(torch.jit.Error, match=f"RuntimeError: NaN/Inf detected in {name}"):
        torch.jit.script(module)(*inputs)


def test_non_finite_total_raises_in_torchscript():
    scores = torch.tensor([1e30, 0.0])
    scripted = torch.jit.script(CombinedLoss())
    with pytest.raises(torch.jit.Error, match="NaN/Inf detected in total loss"):
        scripted(scores, torch.zeros(2, 2), torch.tensor([1.0, 0.0]))


def test_checks_are_skipped_in_the_exported_graph():
    inputs = _batch(4, 6, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(CombinedLoss(), inputs, dynamic_shapes=({0: batch}, {0: batch}, {0: batch}))
    scores = inputs[0].clone()
    scores[0] = float("nan")
    total, parts = program.module()(scores, inputs[1], inputs[2])
    assert torch.isnan(total) and torch.isnan(parts["regression"])


def test_soft_labels_follow_the_documented_threshold_not_upstream_truncation():
    scores = torch.tensor([0.8, 0.3])
    logits = torch.tensor([[0.0, 4.0], [4.0, 0.0]])
    labels = torch.tensor([0.7, 0.3])
    _, parts = CombinedLoss()(scores, logits, labels)
    expected = F.cross_entropy(logits, torch.tensor([1, 0]))
    torch.testing.assert_close(parts["classification"], expected)
    torch.testing.assert_close(parts["ranking"], torch.tensor(0.0))
