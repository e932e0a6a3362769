"""The reference loss library. One module per family; each registers its specs on import.

Where a loss lives: ``classification`` (cross-entropy, focal, softmax focal, MTP),
``distillation`` (KD, LwF), ``boxes`` (IoU maths, GIoU/DIoU/CIoU), ``detection`` (varifocal,
centerness, FCOS, DFL, CenterNet, combined detection), ``keypoint`` (OKS, heatmap),
``segmentation`` (pixel-wise focal, Dice, IoU, Tversky, mask, CE + Dice), ``audio`` (RMSE, SNR,
SI-SDR, mel), ``tigas`` (TIGAS training loss). Public names are re-exported here.
"""

from lossport.losses import (
    audio,
    boxes,
    classification,
    detection,
    distillation,
    keypoint,
    segmentation,
    tigas,
)

_FAMILIES = (audio, boxes, classification, detection, distillation, keypoint, segmentation, tigas)

__all__ = sorted(name for family in _FAMILIES for name in family.__all__)
globals().update({name: getattr(family, name) for family in _FAMILIES for name in family.__all__})
