"""Reduced-precision artifacts of the trained scorer (tests/fixtures/tigas_trained) judged on
real images: eager fp32 against ONNX Runtime on the image set's eval split (photos the
scorer and the built-in calibration set never saw), with the targets of the README's
Precision section: Spearman >= 0.99 and at most 1% of decisions flipped at 0.5."""

from __future__ import annotations

import pytest

from lossport import catalog
from lossport.artifact.runtime import artifact_preprocess
from lossport.export import export_artifact
from lossport.models.tigas.specs import resolve_weights
from lossport.validation.backends import OrtBackend, reference_backend
from lossport.validation.images import ImageCriteria, image_agreements

pytest.importorskip("skimage")

MIN_SPEARMAN = 0.99
MAX_FLIP_SHARE = 0.01


@pytest.mark.parametrize("precision", ["int8", pytest.param("fp16", marks=pytest.mark.slow)])
def test_trained_scorer_agrees_on_real_images(precision, tigas_trained, imageset, tmp_path):
    """Every eval image (160: 80 real crops, 80 generated-looking)."""
    folder = imageset.folder("eval")
    resolved = resolve_weights(checkpoint=tigas_trained)
    spec = catalog.get_spec("tigas", kind="model")
    artifact = export_artifact(
        spec,
        fmt="onnx",
        path=tmp_path / f"trained_{precision}.onnx",
        config=resolved.config,
        module=resolved.model,
        weights=resolved.weights,
        precision=precision,
    ).path
    (result,) = image_agreements(
        spec,
        reference_backend(resolved.model, spec),
        [OrtBackend(artifact, spec, "cpu")],
        artifact_preprocess(artifact),
        ImageCriteria(folder),
    )
    assert len(result.paths) == len(imageset.paths("eval")) == 160
    assert max(result.reference) - min(result.reference) > 0.5  # scores spread: the ranks mean something
    assert result.spearman >= MIN_SPEARMAN, result.describe()
    assert result.flips <= MAX_FLIP_SHARE * len(result.paths), result.describe()
