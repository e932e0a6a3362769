"""Segmentation losses beyond the catalog: MONAI's DiceCELoss, reductions, all-ignored and
absent classes against MONAI, class weights, and the shared soft-overlap core."""

import pytest
import torch
import torch.nn.functional as F

from lossport.losses import (
    CombinedSegmentationLoss,
    DiceLoss,
    FocalLossPixelwise,
    IoULoss,
    MaskLoss,
    TverskyLoss,
    soft_overlap_stats,
)

monai = pytest.importorskip("monai")
from monai.losses import DiceCELoss
from monai.losses import DiceLoss as MonaiDice
from monai.losses import TverskyLoss as MonaiTversky

IGNORE = 255


def _inputs(batch=2, classes=4, height=5, width=3, seed=0, ignore=0.2):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, classes, height, width, generator=generator, dtype=torch.float64) * 3
    target = torch.randint(0, classes, (batch, height, width), generator=generator)
    drop = torch.rand(batch, height, width, generator=generator) < ignore
    return logits, torch.where(drop, torch.full_like(target, IGNORE), target)


def test_combined_matches_monai_dice_ce_without_ignored_pixels():
    logits, target = _inputs(ignore=0.0)
    ours = CombinedSegmentationLoss(4, ce_weight=0.7, dice_weight=1.3)(logits, target)
    theirs = DiceCELoss(
        softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0, lambda_ce=0.7, lambda_dice=1.3
    )(logits, target.unsqueeze(1))
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


def test_combined_class_weights_enter_ce_only():
    logits, target = _inputs()
    weights = [0.2, 1.0, 3.0, 0.5]
    ours = CombinedSegmentationLoss(4, class_weights=weights)(logits, target)
    ce = F.cross_entropy(
        logits, target, weight=torch.tensor(weights, dtype=torch.float64), ignore_index=IGNORE
    )
    dice = MonaiDice(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0, ignore_index=IGNORE)(
        logits, target.unsqueeze(1)
    )
    torch.testing.assert_close(ours, ce + dice, atol=1e-12, rtol=1e-10)
    scripted = torch.jit.script(CombinedSegmentationLoss(4, class_weights=torch.tensor(weights)))
    torch.testing.assert_close(scripted(logits, target), ours, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_overlap_reductions_match_monai(reduction):
    logits, target = _inputs(seed=3)
    cases = [
        (
            DiceLoss(4, reduction=reduction),
            MonaiDice(
                softmax=True,
                to_onehot_y=True,
                smooth_nr=1.0,
                smooth_dr=1.0,
                ignore_index=IGNORE,
                reduction=reduction,
            ),
        ),
        (
            TverskyLoss(4, alpha=0.8, beta=0.2, reduction=reduction),
            MonaiTversky(
                softmax=True,
                to_onehot_y=True,
                alpha=0.8,
                beta=0.2,
                smooth_nr=1.0,
                smooth_dr=1.0,
                ignore_index=IGNORE,
                reduction=reduction,
            ),
        ),
        (
            IoULoss(4, smooth=0.5, reduction=reduction),
            MonaiDice(
                softmax=True,
                to_onehot_y=True,
                jaccard=True,
                smooth_nr=1.0,
                smooth_dr=1.0,
                ignore_index=IGNORE,
                reduction=reduction,
            ),
        ),
    ]
    for ours, theirs in cases:
        expected = theirs(logits, target.unsqueeze(1))
        got = ours(logits, target)
        if reduction == "none":
            assert got.shape == (2, 4)
            expected = expected.reshape(2, 4)
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


def test_absent_classes_and_one_class_images_match_monai():
    logits, _ = _inputs(seed=5)
    target = torch.zeros(2, 5, 3, dtype=torch.long)
    target[1, :2] = 2
    target[0, 0, 0] = IGNORE
    expected = MonaiDice(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0, ignore_index=IGNORE)(
        logits, target.unsqueeze(1)
    )
    torch.testing.assert_close(DiceLoss(4)(logits, target), expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DiceLoss(4),
        lambda: IoULoss(4),
        lambda: TverskyLoss(4, alpha=0.3, beta=0.7),
        lambda: DiceLoss(4, smooth=0.0),
        lambda: CombinedSegmentationLoss(4, class_weights=[1, 2, 3, 4]),
        lambda: FocalLossPixelwise(),
    ],
)
def test_all_ignored_is_zero_with_zero_gradient(make):
    logits, _ = _inputs()
    logits.requires_grad_(True)
    loss = make()(logits, torch.full((2, 5, 3), IGNORE))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_one_image_all_ignored_drops_out_of_the_overlap_sums():
    logits, target = _inputs(seed=7)
    target[1] = IGNORE
    intersection, pred_sum, target_sum = soft_overlap_stats(logits, target, IGNORE)
    assert torch.equal(pred_sum[1], torch.zeros(4, dtype=torch.float64))
    assert torch.equal(target_sum[1], torch.zeros(4, dtype=torch.float64))
    per_image = DiceLoss(4, reduction="none")(logits, target)
    assert torch.equal(per_image[1], torch.zeros(4, dtype=torch.float64))


def test_ignore_index_inside_the_class_range():
    logits, target = _inputs(ignore=0.0, seed=11)
    ours = DiceLoss(4, ignore_index=0)(logits, target)
    theirs = MonaiDice(softmax=True, to_onehot_y=True, smooth_nr=1.0, smooth_dr=1.0, ignore_index=0)(
        logits, target.unsqueeze(1)
    )
    torch.testing.assert_close(ours, theirs, atol=1e-12, rtol=1e-10)


def test_tversky_half_half_is_dice_with_doubled_smoothing():
    logits, target = _inputs(seed=13)
    torch.testing.assert_close(
        TverskyLoss(4, smooth=0.5)(logits, target),
        DiceLoss(4, smooth=1.0)(logits, target),
        atol=1e-12,
        rtol=1e-10,
    )


def test_mask_loss_is_finite_in_float32_at_extreme_logits():
    logits = torch.tensor([[[-100.0, -30.0, 30.0, 100.0]]], requires_grad=True)
    target = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    loss = MaskLoss(pos_weight=2.0, reduction="none")(logits, target)
    expected = F.binary_cross_entropy_with_logits(
        logits, target, reduction="none", pos_weight=torch.tensor([2.0])
    )
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()
    assert torch.isfinite(logits.grad).all()
