"""Detection losses: varifocal, centerness, FCOS, distribution focal, CenterNet, combined.

One module per loss, each with its functional form, its ``nn.Module`` and its
``register(Spec(...))``:

- :mod:`~lossport.losses.detection.varifocal`: varifocal loss (VarifocalNet, as ultralytics),
  spec ``varifocal``;
- :mod:`~lossport.losses.detection.centerness`: FCOS centerness BCE, spec ``centerness``;
- :mod:`~lossport.losses.detection.fcos`: FCOS (focal, GIoU of LTRB boxes, centerness, on
  locations flattened over the levels), spec ``fcos``;
- :mod:`~lossport.losses.detection.dfl`: distribution focal loss (Generalized Focal Loss, as
  ultralytics), spec ``dfl``;
- :mod:`~lossport.losses.detection.centernet`: CenterNet (penalty-reduced heatmap focal, masked
  L1 of sizes and offsets), spec ``centernet``;
- :mod:`~lossport.losses.detection.combined`: combined detection loss (focal + GIoU / DIoU /
  CIoU on matched boxes), spec ``detection``;
- :mod:`~lossport.losses.detection.common`: what they share (config checks, the two terms of a
  dense detector, the class-target check, an edge-case helper).

Conventions shared by the family: logits are raw scores (the sigmoid is applied inside); class
targets are int64 indices with a negative value (-1) meaning background / unmatched, so a
location is *positive* when its class index is >= 0; boxes are xyxy unless a ``box_format``
option says otherwise (box maths from :mod:`lossport.losses.boxes`). Positives are selected
with masks and ``where``, never by boolean indexing, so shapes never depend on the data.
Losses made of several terms return a dict whose components are already multiplied by their
weights, with ``total_loss`` (their sum) last.
"""

from __future__ import annotations

# The modules register their specs when imported, in this order (the order `lossport list`
# shows): keep it, do not sort these imports.
# isort: off
from lossport.losses.detection.varifocal import VarifocalLoss, varifocal_loss
from lossport.losses.detection.centerness import CenternessLoss, centerness_loss
from lossport.losses.detection.fcos import FCOSLoss, fcos_loss, flatten_levels, ltrb_to_boxes
from lossport.losses.detection.dfl import DFLoss, distribution_focal_loss
from lossport.losses.detection.centernet import CenterNetLoss, centernet_heatmap_loss, centernet_loss
from lossport.losses.detection.combined import DetectionLoss, detection_loss

# isort: on

__all__ = [
    "CenterNetLoss",
    "CenternessLoss",
    "DFLoss",
    "DetectionLoss",
    "FCOSLoss",
    "VarifocalLoss",
    "centernet_heatmap_loss",
    "centernet_loss",
    "centerness_loss",
    "detection_loss",
    "distribution_focal_loss",
    "fcos_loss",
    "flatten_levels",
    "ltrb_to_boxes",
    "varifocal_loss",
]
