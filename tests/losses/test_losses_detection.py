"""Detection losses beyond the catalog: FCOS per-level lists vs flattened tensors, background
locations that never reach the gradient, DFL layouts and caller tensors, reductions, empty
input, and the combined loss against the box functions."""

import math

import pytest
import torch
import torch.nn.functional as F

from lossport.losses import (
    CenternessLoss,
    CenterNetLoss,
    DetectionLoss,
    DFLoss,
    FCOSLoss,
    VarifocalLoss,
)
from lossport.losses import boxes as B
from lossport.losses import detection as D
from lossport.losses.classification import binary_cross_entropy_with_logits
from lossport.spec.domains import BoxesXYXY

D64 = torch.float64


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# -- FCOS ------------------------------------------------------------------------------------


def _fcos_levels(seed, batch=2, num_classes=3, sizes=((4, 5), (2, 3), (1, 1))):
    g = _gen(seed)
    levels = {k: [] for k in ("cls", "reg", "ctr", "cls_t", "reg_t", "ctr_t")}
    for h, w in sizes:
        levels["cls"].append(torch.randn(batch, num_classes, h, w, generator=g, dtype=D64))
        levels["reg"].append(0.5 + 4 * torch.rand(batch, 4, h, w, generator=g, dtype=D64))
        levels["ctr"].append(torch.randn(batch, 1, h, w, generator=g, dtype=D64))
        levels["cls_t"].append(torch.randint(-1, num_classes, (batch, h, w), generator=g))
        levels["reg_t"].append(0.5 + 4 * torch.rand(batch, 4, h, w, generator=g, dtype=D64))
        levels["ctr_t"].append(torch.rand(batch, h, w, generator=g, dtype=D64))
    return [levels[k] for k in ("cls", "reg", "ctr", "cls_t", "reg_t", "ctr_t")]


def _flatten_by_hand(levels, squeeze=False):
    """[B, K, H, W] -> [B, H*W, K] per level by explicit indexing, then concatenated."""
    rows = []
    for level in levels:
        if level.dim() == 4:
            b, k, h, w = level.shape
            rows.append(torch.stack([level[:, :, y, x] for y in range(h) for x in range(w)], 1))
        else:
            b, h, w = level.shape
            rows.append(torch.stack([level[:, y, x] for y in range(h) for x in range(w)], 1))
    out = torch.cat(rows, 1)
    return out.squeeze(-1) if squeeze else out


def test_flatten_levels_layout():
    cls, _, ctr, cls_t, _, _ = _fcos_levels(0)
    torch.testing.assert_close(D.flatten_levels(cls), _flatten_by_hand(cls))
    torch.testing.assert_close(D.flatten_levels(cls_t), _flatten_by_hand(cls_t))
    assert D.flatten_levels(ctr).shape == (2, 20 + 6 + 1, 1)


def test_fcos_lists_match_flattened_tensors():
    levels = _fcos_levels(1)
    flat = [_flatten_by_hand(v, squeeze=(i == 2)) for i, v in enumerate(levels)]
    module = FCOSLoss(num_classes=3)
    from_lists = module(*levels)
    from_tensors = module(*flat)
    mixed = module(*(flat[:3] + levels[3:]))
    scripted = torch.jit.script(module)
    for out in (from_tensors, mixed, scripted(*levels), scripted(*flat)):
        for key in from_lists:
            torch.testing.assert_close(out[key], from_lists[key])
    assert list(from_lists) == ["cls_loss", "reg_loss", "centerness_loss", "total_loss"]


def test_fcos_background_never_reaches_the_gradient():
    cls, reg, ctr, cls_t, reg_t, ctr_t = [D.flatten_levels(v) for v in _fcos_levels(2)]
    ctr, cls_t = ctr.squeeze(-1), cls_t
    background = cls_t < 0
    assert background.any() and (~background).any()
    # garbage where nothing is matched: inverted / zero distances
    reg = torch.where(background.unsqueeze(-1), -reg, reg).requires_grad_(True)
    reg_t = torch.where(background.unsqueeze(-1), torch.zeros_like(reg_t), reg_t)
    ctr = ctr.clone().requires_grad_(True)
    out = FCOSLoss(num_classes=3)(cls, reg, ctr, cls_t, reg_t, ctr_t)
    g_reg, g_ctr = torch.autograd.grad(out["total_loss"], (reg, ctr))
    assert torch.isfinite(g_reg).all() and torch.isfinite(g_ctr).all()
    assert (g_reg[background] == 0).all() and (g_ctr[background] == 0).all()
    assert (g_reg[~background] != 0).any()


def test_fcos_no_positives():
    cls, reg, ctr, cls_t, reg_t, ctr_t = _fcos_levels(3)
    cls_t = [torch.full_like(c, -1) for c in cls_t]
    out = FCOSLoss(num_classes=3)(cls, reg, ctr, cls_t, reg_t, ctr_t)
    assert out["reg_loss"].item() == 0.0 and out["centerness_loss"].item() == 0.0
    one_hot_zeros = [torch.zeros_like(c) for c in cls]
    expected = sum(torchvision_style_focal(c, z) for c, z in zip(cls, one_hot_zeros))
    assert out["cls_loss"].item() == pytest.approx(expected.item(), rel=1e-12)


def torchvision_style_focal(logits, targets, alpha=0.25, gamma=2.0):
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    return ((alpha * targets + (1 - alpha) * (1 - targets)) * ce * (1 - p_t) ** gamma).sum()


def test_ltrb_boxes_are_relative_to_the_location():
    d = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert D.ltrb_to_boxes(d).tolist() == [[-1.0, -2.0, 3.0, 4.0]]


# -- DFL -------------------------------------------------------------------------------------


def test_dfl_layouts_agree_and_caller_tensors_are_kept():
    g = _gen(4)
    pred = torch.randn(3, 4, 16, generator=g, dtype=D64)
    target = torch.tensor([[-2.0, 0.0, 7.5, 15.0], [14.99, 3.3, 40.0, 0.01], [1.0, 2.0, 3.0, 4.0]], dtype=D64)
    before = target.clone()
    three_d = DFLoss()(pred, target)
    two_d = DFLoss()(pred.reshape(12, 16), target)
    assert torch.equal(target, before)
    torch.testing.assert_close(three_d, two_d)
    per_box = DFLoss(reduction="none")(pred, target)
    assert per_box.shape == (3,)
    assert three_d.item() == pytest.approx(per_box.mean().item(), rel=1e-12)
    scripted = torch.jit.script(DFLoss())
    torch.testing.assert_close(scripted(pred.reshape(12, 16), target), three_d)


def test_dfl_targets_beyond_the_range_are_clamped():
    pred = torch.randn(1, 4, 16, generator=_gen(5), dtype=D64)
    low = DFLoss()(pred, torch.full((1, 4), -5.0, dtype=D64))
    assert low.item() == pytest.approx(DFLoss()(pred, torch.zeros(1, 4, dtype=D64)).item())
    high = DFLoss()(pred, torch.full((1, 4), 99.0, dtype=D64))
    assert high.item() == pytest.approx(DFLoss()(pred, torch.full((1, 4), 14.99, dtype=D64)).item())


def test_dfl_empty():
    pred = torch.zeros(0, 4, 16, requires_grad=True)
    loss = DFLoss()(pred, torch.zeros(0, 4))
    assert loss.item() == 0.0
    assert torch.autograd.grad(loss, pred)[0].shape == (0, 4, 16)
    assert DFLoss()(torch.zeros(0, 16), torch.zeros(0, 4)).item() == 0.0


# -- varifocal and centerness ----------------------------------------------------------------


def test_varifocal_reductions():
    g = _gen(6)
    logits = torch.randn(2, 5, 3, generator=g, dtype=D64)
    label = (torch.rand(2, 5, 3, generator=g) < 0.4).to(D64)
    score = label * torch.rand(2, 5, 3, generator=g, dtype=D64)
    none = VarifocalLoss(reduction="none")(logits, score, label)
    assert none.shape == (2, 5, 3)
    default = VarifocalLoss()(logits, score, label)
    assert default.item() == pytest.approx(none.mean(1).sum().item(), rel=1e-12)
    assert VarifocalLoss(reduction="mean")(logits, score, label).item() == pytest.approx(
        none.mean().item(), rel=1e-12
    )


def test_varifocal_weight_carries_gradient():
    """ultralytics does not detach the weight, so neither do we."""
    logits = torch.tensor([[[1.5]]], dtype=D64, requires_grad=True)
    zero = torch.zeros(1, 1, 1, dtype=D64)
    (grad,) = torch.autograd.grad(VarifocalLoss()(logits, zero, zero), logits)
    p = 1 / (1 + math.exp(-1.5))
    bce = math.log1p(math.exp(1.5))
    expected = 0.75 * (2 * p * p * (1 - p) * bce + p**2 * p)
    assert grad.item() == pytest.approx(expected, rel=1e-10)


def test_varifocal_small_gamma_where_the_sigmoid_underflows():
    logits = torch.tensor([[[-200.0, -30.0, 30.0]]], requires_grad=True)
    zero = torch.zeros(1, 1, 3)
    loss = VarifocalLoss(gamma=0.5)(logits, zero, zero)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


def test_varifocal_and_centerness_empty():
    assert VarifocalLoss()(torch.zeros(2, 0, 3), torch.zeros(2, 0, 3), torch.zeros(2, 0, 3)).item() == 0.0
    assert CenternessLoss()(torch.zeros(0), torch.zeros(0)).item() == 0.0
    assert CenternessLoss()(torch.zeros(0), torch.zeros(0), torch.zeros(0)).item() == 0.0


def test_stable_bce_matches_torch_at_extreme_logits():
    x = torch.tensor([-30.0, -17.0, -1.0, 0.0, 2.0, 19.0, 30.0], dtype=D64)
    for q in (0.0, 0.3, 1.0):
        target = torch.full_like(x, q)
        xg = x.clone().requires_grad_(True)
        ours = binary_cross_entropy_with_logits(xg, target)
        torch.testing.assert_close(
            ours, F.binary_cross_entropy_with_logits(x, target, reduction="none"), atol=1e-8, rtol=1e-12
        )
        (grad,) = torch.autograd.grad(ours.sum(), xg)
        torch.testing.assert_close(grad, torch.sigmoid(x) - target, atol=1e-12, rtol=1e-12)


def test_centerness_weights():
    logits = torch.tensor([0.0, 1.0, -2.0], dtype=D64)
    target = torch.tensor([0.2, 1.0, 0.0], dtype=D64)
    weights = torch.tensor([2.0, 0.0, 1.0], dtype=D64)
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    assert CenternessLoss()(logits, target, weights).item() == pytest.approx(
        (2 * per[0] + per[2]).item() / 3, rel=1e-12
    )
    torch.testing.assert_close(CenternessLoss(reduction="none")(logits, target, weights), per * weights)


# -- CenterNet -------------------------------------------------------------------------------


def _centernet_inputs(seed):
    from lossport import catalog

    spec = catalog.get_spec("centernet")
    sizes = {"batch": 2, "classes": 3, "height": 4, "width": 5, "objects": 4}
    return list(spec.sampler(spec, sizes, _gen(seed), D64))


def test_centernet_bool_mask_and_padding_slots():
    inputs = _centernet_inputs(7)
    mask = inputs[5]
    reference = CenterNetLoss()(*inputs)
    as_bool = inputs[:5] + [mask > 0] + inputs[6:]
    garbage = list(inputs)
    garbage[6] = torch.where((mask > 0).unsqueeze(-1), inputs[6], torch.full_like(inputs[6], 1e6))
    garbage[4] = torch.where(mask > 0, inputs[4], torch.zeros_like(inputs[4]))
    for other in (CenterNetLoss()(*as_bool), CenterNetLoss()(*garbage)):
        for key in reference:
            torch.testing.assert_close(other[key], reference[key])


def test_centernet_gather_reads_flat_indices():
    maps = torch.arange(2 * 2 * 3 * 4, dtype=D64).view(2, 2, 3, 4)
    indices = torch.tensor([[0, 5, 11], [7, 7, 2]])
    got = D.centernet._gather_locations(maps, indices)
    for b in range(2):
        for m in range(3):
            y, x = divmod(int(indices[b, m]), 4)
            assert got[b, m].tolist() == maps[b, :, y, x].tolist()


def test_centernet_heatmap_is_exact_at_extreme_logits():
    """No clamp of the sigmoid: a confident right answer costs ~0 and keeps its gradient."""
    logits = torch.tensor([[[[30.0, -30.0]]]], dtype=D64, requires_grad=True)
    target = torch.tensor([[[[1.0, 0.0]]]], dtype=D64)
    loss = D.centernet_heatmap_loss(logits, target)
    assert 0 < loss.item() < 1e-20
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(grad).all() and (grad != 0).all()


# -- combined detection ----------------------------------------------------------------------


@pytest.mark.parametrize("box_loss", ["giou", "diou", "ciou"])
def test_detection_box_term_uses_the_box_losses(box_loss):
    g = _gen(8)
    boxes = BoxesXYXY().sample((2, 5, 4), {}, g, D64)
    targets = BoxesXYXY().sample((2, 5, 4), {}, g, D64)
    labels = torch.tensor([[0, -1, 2, 1, -1], [-1, -1, 0, -1, -1]])
    logits = torch.randn(2, 5, 3, generator=g, dtype=D64)
    out = DetectionLoss(box_loss=box_loss, box_weight=1.0)(logits, boxes, labels, targets)
    matched = labels >= 0
    module = {"giou": B.GIoULoss, "diou": B.DIoULoss, "ciou": B.CIoULoss}[box_loss]
    expected = module()(boxes[matched], targets[matched])
    assert out["box_loss"].item() == pytest.approx(expected.item(), rel=1e-12)


def test_detection_background_boxes_never_reach_the_gradient():
    g = _gen(9)
    boxes = BoxesXYXY().sample((1, 4, 4), {}, g, D64)
    labels = torch.tensor([[1, -1, 0, -1]])
    inverted = boxes.clone()
    inverted[0, 1] = torch.tensor([5.0, 5.0, 1.0, 1.0], dtype=D64)
    inverted[0, 3] = 0.0
    pred = inverted.clone().requires_grad_(True)
    logits = torch.randn(1, 4, 2, generator=g, dtype=D64)
    targets = boxes + 0.5
    targets[0, 1] = torch.tensor([3.0, 3.0, -1.0, -1.0], dtype=D64)
    out = DetectionLoss(box_loss="ciou")(logits, pred, labels, targets)
    (grad,) = torch.autograd.grad(out["total_loss"], pred)
    assert torch.isfinite(grad).all()
    assert (grad[0, 1] == 0).all() and (grad[0, 3] == 0).all()


def test_detection_without_batch_dimension_and_formats():
    g = _gen(10)
    boxes = BoxesXYXY().sample((6, 4), {}, g, D64)
    targets = BoxesXYXY().sample((6, 4), {}, g, D64)
    labels = torch.tensor([0, -1, 1, 1, -1, 0])
    logits = torch.randn(6, 2, generator=g, dtype=D64)
    batched = DetectionLoss()(logits[None], boxes[None], labels[None], targets[None])
    flat = DetectionLoss()(logits, boxes, labels, targets)

    def cxcywh(b):
        return torch.stack(
            [(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], -1
        )

    converted = DetectionLoss(box_format="cxcywh")(logits, cxcywh(boxes), labels, cxcywh(targets))
    for key in batched:
        torch.testing.assert_close(flat[key], batched[key])
        torch.testing.assert_close(converted[key], batched[key])
