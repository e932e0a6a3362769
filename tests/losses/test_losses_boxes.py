"""Box maths and the GIoU / DIoU / CIoU losses beyond the catalog: formats, weights, empty
input, degenerate boxes, CIoU's detached alpha, and kornia's IoU as a cross-check."""

import math

import pytest
import torch
from loss_cases.boxes import reference_box_loss

from lossport.losses import CIoULoss, DIoULoss, GIoULoss
from lossport.losses import boxes as B
from lossport.spec.domains import BoxesXYXY

KINDS = {"giou": GIoULoss, "diou": DIoULoss, "ciou": CIoULoss}


def _boxes(n, seed, dtype=torch.float64):
    return BoxesXYXY().sample((n, 4), {}, torch.Generator().manual_seed(seed), dtype)


def _as_format(xyxy, box_format):
    x1, y1, x2, y2 = xyxy.unbind(-1)
    if box_format == "xywh":
        return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)
    if box_format == "cxcywh":
        return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], -1)
    return xyxy


@pytest.mark.parametrize("box_format", B.BOX_FORMATS)
def test_box_to_xyxy_round_trips(box_format):
    xyxy = _boxes(6, 0)
    torch.testing.assert_close(B.box_to_xyxy(_as_format(xyxy, box_format), box_format), xyxy)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_formats_give_the_xyxy_loss(kind, box_format):
    pred, target = _boxes(7, 1), _boxes(7, 2)
    expected = KINDS[kind](reduction="none")(pred, target)
    got = KINDS[kind](reduction="none", box_format=box_format)(
        _as_format(pred, box_format), _as_format(target, box_format)
    )
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("box_format", B.BOX_FORMATS)
def test_iou_matches_kornia(box_format):
    from kornia.metrics import mean_iou_bbox

    pred, target = _boxes(8, 3), _boxes(8, 4)
    theirs = mean_iou_bbox(
        _as_format(pred, box_format), _as_format(target, box_format), box_format=box_format
    ).diagonal()
    ours, _ = B.aligned_box_iou(pred, target)
    # kornia divides by the union without eps
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)


def test_box_helpers_on_a_known_pair():
    a, b = torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 1.0, 3.0, 4.0]])
    iou, union = B.aligned_box_iou(a, b, eps=0.0)
    assert union.item() == 4 + 6 - 1 and iou.item() == pytest.approx(1 / 9)
    assert B.enclosing_box(a, b).tolist() == [[0.0, 0.0, 3.0, 4.0]]
    assert B.center_distance_squared(a, b).item() == pytest.approx(1 + 1.5**2)
    v = 4 / math.pi**2 * (math.atan(2 / 3) - math.atan(1.0)) ** 2
    assert B.aspect_ratio_term(a, b, eps=0.0).item() == pytest.approx(v)


@pytest.mark.parametrize("kind", KINDS)
def test_leading_dimensions(kind):
    pred, target = _boxes(6, 5), _boxes(6, 6)
    flat = KINDS[kind](reduction="none")(pred, target)
    shaped = KINDS[kind](reduction="none")(pred.view(2, 3, 4), target.view(2, 3, 4))
    assert shaped.shape == (2, 3)
    torch.testing.assert_close(shaped.flatten(), flat)


@pytest.mark.parametrize("kind", KINDS)
def test_weights(kind):
    pred, target = _boxes(5, 7), _boxes(5, 8)
    weights = torch.tensor([0.0, 1.0, 2.0, 0.5, 0.0], dtype=torch.float64)
    per_box = KINDS[kind](reduction="none")(pred, target)
    mean = KINDS[kind]()(pred, target, weights)
    assert mean.item() == pytest.approx((per_box * weights).sum().item() / 3.5, rel=1e-12)
    assert KINDS[kind](reduction="sum")(pred, target, weights).item() == pytest.approx(
        (per_box * weights).sum().item(), rel=1e-12
    )
    torch.testing.assert_close(KINDS[kind](reduction="none")(pred, target, weights), per_box * weights)
    assert KINDS[kind]()(pred, target, torch.zeros(5, dtype=torch.float64)).item() == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_empty_input(kind):
    pred = torch.zeros(0, 4, requires_grad=True)
    for reduction in ("mean", "sum"):
        loss = KINDS[kind](reduction=reduction)(pred, torch.zeros(0, 4))
        assert loss.item() == 0.0
        (grad,) = torch.autograd.grad(loss, pred)
        assert grad.shape == (0, 4)
    assert KINDS[kind](reduction="none")(pred, torch.zeros(0, 4)).shape == (0,)
    assert KINDS[kind]()(pred, torch.zeros(0, 4), torch.zeros(0)).item() == 0.0
    assert torch.jit.script(KINDS[kind]())(pred, torch.zeros(0, 4)).item() == 0.0


DEGENERATE = {
    "identical": ([1.0, 2.0, 4.0, 3.0], [1.0, 2.0, 4.0, 3.0]),
    "disjoint": ([0.0, 0.0, 1.0, 1.0], [5.0, 6.0, 7.0, 9.0]),
    "point_in_box": ([1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 2.0, 3.0]),
    "two_points": ([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]),
    "zero_height_pred": ([0.0, 1.0, 2.0, 1.0], [0.0, 0.0, 2.0, 2.0]),
    "zero_height_both": ([0.0, 1.0, 2.0, 1.0], [0.5, 1.0, 3.0, 1.0]),
    "zero_width_target": ([0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 1.0, 2.0]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_boxes_are_finite_and_match_the_reference(kind, case):
    p, q = DEGENERATE[case]
    pred = torch.tensor([p], dtype=torch.float64, requires_grad=True)
    loss = KINDS[kind]()(pred, torch.tensor([q], dtype=torch.float64))
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert loss.item() == pytest.approx(reference_box_loss(p, q, kind), abs=1e-12)


def test_loss_ranges():
    pred, target = _boxes(50, 9), _boxes(50, 10)
    giou = GIoULoss(reduction="none")(pred, target)
    assert bool(((giou >= 0) & (giou < 2)).all())
    assert GIoULoss()(pred, pred.clone()).item() == pytest.approx(0.0, abs=1e-6)
    disjoint = GIoULoss(reduction="none")(pred, pred + 20.0)
    assert bool((disjoint > 1).all())


def test_ciou_alpha_carries_no_gradient():
    """The gradient is that of DIoU + alpha v with alpha held at its current value."""
    pred, target = _boxes(6, 11), _boxes(6, 12)
    x = pred.clone().requires_grad_(True)
    (ours,) = torch.autograd.grad(CIoULoss(reduction="sum")(x, target), x)
    iou, _ = B.aligned_box_iou(pred, target)
    v = B.aspect_ratio_term(pred, target)
    alpha = v / (1 - iou + v + 1e-7)

    def surrogate(boxes):
        return (DIoULoss(reduction="none")(boxes, target) + alpha * B.aspect_ratio_term(boxes, target)).sum()

    assert torch.autograd.gradcheck(surrogate, (pred.clone().requires_grad_(True),))
    (expected,) = torch.autograd.grad(surrogate(x), x)
    torch.testing.assert_close(ours, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("kind", ["giou", "diou"])
def test_giou_and_diou_gradients(kind):
    pred, target = _boxes(4, 13), _boxes(4, 14)
    assert torch.autograd.gradcheck(lambda p: KINDS[kind]()(p, target), (pred.clone().requires_grad_(True),))


def test_functional_forms_match_modules():
    pred, target = _boxes(4, 15), _boxes(4, 16)
    weights = torch.tensor([1.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    for function, module in (
        (B.generalized_box_iou_loss, GIoULoss),
        (B.distance_box_iou_loss, DIoULoss),
        (B.complete_box_iou_loss, CIoULoss),
    ):
        torch.testing.assert_close(
            function(pred, target, weights, "sum"), module(reduction="sum")(pred, target, weights)
        )


def test_inputs_are_not_modified():
    pred, target = _boxes(3, 17), _boxes(3, 18)
    before = (pred.clone(), target.clone())
    for kind in KINDS:
        KINDS[kind](box_format="cxcywh")(pred, target)
    assert torch.equal(pred, before[0]) and torch.equal(target, before[1])


@pytest.mark.parametrize("kind", KINDS)
def test_torchscript_with_weights_and_formats(kind):
    pred, target = _boxes(5, 19, torch.float32), _boxes(5, 20, torch.float32)
    weights = torch.rand(5, generator=torch.Generator().manual_seed(0))
    module = KINDS[kind](box_format="xywh")
    torch.testing.assert_close(torch.jit.script(module)(pred, target, weights), module(pred, target, weights))


@pytest.mark.parametrize("kind", KINDS)
def test_identical_boxes_have_zero_gradient_in_eager_and_torchscript(kind):
    """Ties in min/max split the gradient evenly in every backend (TorchScript's autodiff of
    torch.min/max does not), so the optimum has gradient 0 in eager and scripted runs alike."""
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 4.0, 3.0]])
    scripted = torch.jit.script(KINDS[kind]())
    for module in (KINDS[kind](),) + (scripted,) * 3:  # the scripted runs reach the optimised graph
        pred = boxes.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(module(pred, boxes.clone()), pred)
        assert torch.equal(grad, torch.zeros_like(grad)), grad
