"""Classification paths the registered specs do not cover: focal's class-index targets,
cross-entropy's LM layout and class weights, MTP heads as a list, softmax focal's alpha tensor."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lossport.losses import CrossEntropyLoss, FocalLoss, MTPLoss, SoftmaxFocalLoss

DOUBLE = torch.float64


def _randn(*shape, seed=0, scale=2.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE) * scale


def _torchvision_focal(logits, targets, alpha, gamma):
    """torchvision.ops.sigmoid_focal_loss (reduction="none"), written out."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


@pytest.mark.parametrize("alpha", [0.25, -1.0])
def test_focal_index_targets_are_one_vs_all(alpha):
    logits = _randn(6, 4)
    target = torch.tensor([0, 3, -1, 2, 2, -5])
    valid = target >= 0
    one_hot = F.one_hot(target.clamp(min=0), 4).to(DOUBLE) * valid[:, None]
    per_sample = _torchvision_focal(logits, one_hot, alpha, 2.0).sum(1) * valid
    module = FocalLoss(alpha=alpha)
    torch.testing.assert_close(module(logits, target), per_sample.sum() / valid.sum())
    torch.testing.assert_close(FocalLoss(alpha=alpha, reduction="sum")(logits, target), per_sample.sum())
    torch.testing.assert_close(FocalLoss(alpha=alpha, reduction="none")(logits, target), per_sample)


def test_focal_index_targets_dense():
    logits = _randn(2, 3, 4, 5, seed=1)
    target = torch.randint(-1, 3, (2, 4, 5), generator=torch.Generator().manual_seed(2))
    valid = target >= 0
    one_hot = F.one_hot(target.clamp(min=0), 3).permute(0, 3, 1, 2).to(DOUBLE)
    per_pixel = (_torchvision_focal(logits, one_hot * valid[:, None], 0.25, 2.0).sum(1)) * valid
    torch.testing.assert_close(FocalLoss()(logits, target), per_pixel.sum() / valid.sum())


def test_focal_index_path_scripts():
    module = FocalLoss()
    scripted = torch.jit.script(module)
    logits, target = _randn(5, 3, seed=3), torch.tensor([0, -1, 2, 1, 1])
    torch.testing.assert_close(scripted(logits, target), module(logits, target))
    binary = (target[:, None] == torch.arange(3)).to(DOUBLE)
    torch.testing.assert_close(scripted(logits, binary), module(logits, binary))


def test_cross_entropy_lm_layout_matches_torch():
    logits = _randn(2, 7, 5, seed=4)
    labels = torch.randint(0, 5, (2, 7), generator=torch.Generator().manual_seed(5))
    labels[0, :3] = -100
    module = CrossEntropyLoss(class_dim_last=True, label_smoothing=0.1)
    expected = F.cross_entropy(logits.transpose(1, 2), labels, label_smoothing=0.1)
    torch.testing.assert_close(module(logits, labels), expected)
    flat = F.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), label_smoothing=0.1)
    torch.testing.assert_close(module(logits, labels), flat)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_class_weights_match_torch(smoothing, reduction):
    weight = torch.tensor([0.2, 1.0, 3.0, 0.5], dtype=DOUBLE)
    logits = _randn(6, 4, 3, seed=6)
    target = torch.randint(0, 4, (6, 3), generator=torch.Generator().manual_seed(7))
    target[1] = -100
    module = CrossEntropyLoss(weight=weight, label_smoothing=smoothing, reduction=reduction)
    expected = F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing, reduction=reduction)
    torch.testing.assert_close(module(logits, target), expected)
    torch.testing.assert_close(torch.jit.script(module)(logits, target), expected)


def test_class_weight_is_a_buffer():
    module = CrossEntropyLoss(weight=[1.0, 2.0])
    assert "weight" in dict(module.named_buffers())
    assert module.double().weight.dtype == DOUBLE
    assert "weight" not in dict(CrossEntropyLoss().named_buffers())
    assert "alpha" in dict(SoftmaxFocalLoss(alpha=torch.tensor([1.0, 2.0])).named_buffers())


def test_cross_entropy_all_ignored_is_zero_with_zero_gradient():
    logits = _randn(3, 4, seed=8).requires_grad_(True)
    loss = CrossEntropyLoss()(logits, torch.full((3,), -100))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_softmax_focal_alpha_tensor_matches_kornia():
    kornia_losses = pytest.importorskip("kornia.losses")
    alpha = torch.tensor([0.25, 0.75, 0.5], dtype=DOUBLE)
    logits = _randn(4, 3, 5, seed=9)
    target = torch.randint(0, 3, (4, 5), generator=torch.Generator().manual_seed(10))
    target[0, :2] = -100
    total = kornia_losses.focal_loss(
        logits, target, alpha=None, gamma=2.0, reduction="sum", weight=alpha, ignore_index=-100
    )
    module = SoftmaxFocalLoss(alpha=alpha)
    torch.testing.assert_close(module(logits, target), total / (target != -100).sum())
    torch.testing.assert_close(torch.jit.script(module)(logits, target), module(logits, target))


def test_softmax_focal_kornia_scalar_alpha_as_tensor():
    kornia_losses = pytest.importorskip("kornia.losses")
    logits = _randn(6, 4, seed=11)
    target = torch.tensor([0, 1, 2, 3, 0, 2])
    expected = kornia_losses.focal_loss(logits, target, alpha=0.3, gamma=1.0, reduction="sum")
    module = SoftmaxFocalLoss(alpha=[0.7, 0.3, 0.3, 0.3], gamma=1.0, reduction="sum")
    torch.testing.assert_close(module(logits, target), expected)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_saturated_gradient_is_finite_for_any_gamma(gamma):
    logits = torch.tensor([[200.0, -200.0], [-200.0, 200.0]], requires_grad=True)
    losses = [
        SoftmaxFocalLoss(gamma=gamma)(logits, torch.tensor([0, 0])),
        FocalLoss(gamma=gamma)(logits, torch.tensor([[1.0, 0.0], [1.0, 0.0]])),
        FocalLoss(gamma=gamma)(logits, torch.tensor([0, 1])),
    ]
    for loss in losses:
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_mtp_list_equals_stacked_and_reaches_every_head():
    logits = _randn(2, 6, 5, seed=12).requires_grad_(True)
    heads = [_randn(2, 6, 5, seed=13 + k).requires_grad_(True) for k in range(3)]
    labels = torch.randint(0, 5, (2, 6), generator=torch.Generator().manual_seed(20))
    module = MTPLoss()
    from_list = module(logits, heads, labels)
    torch.testing.assert_close(from_list, module(logits, torch.stack(heads), labels))
    torch.testing.assert_close(torch.jit.script(module)(logits, heads, labels), from_list)
    from_list.backward()
    for k, head in enumerate(heads, start=1):
        assert torch.equal(head.grad[:, 6 - k :], torch.zeros(2, k, 5, dtype=DOUBLE)), k
        assert head.grad[:, : 6 - k].abs().sum() > 0, k


def test_mtp_zero_lambda_is_the_main_cross_entropy():
    logits = _randn(2, 4, 3, seed=30)
    labels = torch.randint(0, 3, (2, 4), generator=torch.Generator().manual_seed(31))
    loss = MTPLoss(mtp_depth=2, mtp_lambda=0.0)(logits, _randn(2, 2, 4, 3, seed=32), labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1)))
