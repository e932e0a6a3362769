"""``lossport preprocess`` (images or a random tensor -> a tensor file) and ``lossport score``
(images -> TIGAS scores, with a checkpoint in PyTorch or an exported scorer)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import click
import torch

from lossport.artifact.runtime import artifact_preprocess
from lossport.cli.common import parse_sizes, trust_artifact_option
from lossport.errors import ConfigError, ImageError
from lossport.io import images as image_io
from lossport.io import tensorfile
from lossport.io.atomic import check_writable, terminate_as_exit
from lossport.io.batching import load_batches
from lossport.io.digest import FileRecord
from lossport.io.scorefile import Existing, Header, ScoreFileError, kind_of, open_writer, read_existing
from lossport.io.scorefile.format import pyarrow_modules
from lossport.io.sharding import Shard
from lossport.models.tigas.hub import download_checkpoint
from lossport.models.tigas.model import MIN_SIDE
from lossport.models.tigas.scoring import ScoreReport, iter_scores, render_heading, render_rows
from lossport.spec.limits import MAX_ELEMENTS, MAX_IMAGE_SIDE
from lossport.spec.preprocess import Preprocess

DEFAULT_WORKERS = 2


def _contract(size, model) -> Preprocess:
    """The preprocessing contract: ``--size S|H,W`` (RGB, [0,1], NCHW), or ``--model``'s."""
    if (size is None) == (model is None):
        raise ConfigError(
            "give the image size as --size SIZE|HEIGHT,WIDTH, or --model ARTIFACT "
            "to use the artifact's preprocessing contract (not both)"
        )
    if model is not None:
        return artifact_preprocess(model) or Preprocess.default()
    dims = parse_sizes(size, "--size", "SIZE or HEIGHT,WIDTH (positive integers)")
    if len(dims) > 2:
        raise ConfigError(f"--size expects SIZE or HEIGHT,WIDTH (positive integers), got {size!r}")
    return Preprocess(size=(dims[0], dims[-1]))


@click.command("preprocess")
@click.argument("images", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Tensor file to write (format: lossport/io/tensorfile.py, docs/deploying.md).",
)
@click.option("--size", help="Resize images to SIZE x SIZE or HEIGHT,WIDTH (RGB, [0,1], NCHW).")
@click.option(
    "--model",
    type=click.Path(path_type=Path),
    help="Follow this exported artifact's preprocessing contract (size, range, ...).",
)
@click.option(
    "--random",
    "random_shape",
    metavar="SHAPE",
    help="Instead of images: uniform [0, 1) float32 values of SHAPE, e.g. 2,3,64,64.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random.")
def preprocess(images, output, size, model, random_shape, seed) -> None:
    """Write IMAGES (files or folders) or a random tensor as one tensor file that every runtime
    reads identically: float32, C order, after a small JSON header."""
    if bool(images) == bool(random_shape):
        raise ConfigError("give IMAGES to preprocess, or --random SHAPE (not both)")
    if random_shape:
        if size is not None or model is not None:
            raise ConfigError("--size and --model apply to images, not to --random")
        shape = parse_sizes(random_shape, "--random", "comma-separated positive sizes, e.g. 2,3,64,64")
        if len(shape) > 8 or math.prod(shape) > MAX_ELEMENTS:
            raise ConfigError(f"--random {random_shape}: at most 8 dimensions and {MAX_ELEMENTS} elements")
        if not 0 <= seed < 2**63:
            raise ConfigError(f"--seed {seed}: use 0 to 2**63 - 1")
        tensor = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
        info = {"range": "[0,1]", "seed": seed, **({"layout": "NCHW"} if len(shape) == 4 else {})}
        what = f"seed {seed}"
    else:
        contract = _contract(size, model)
        sources, skipped = image_io.collect_sources(images)
        batches = list(load_batches(sources, contract.size, max(len(sources), 1), skipped))
        for item in skipped:
            click.echo(f"skipped {item.path}: {item.reason}", err=True)
        if not batches:
            raise ImageError(f"no images found in {', '.join(images)}")
        files, batch = batches[0]
        tensor = contract.apply(batch)
        info = {
            "layout": contract.layout,
            "range": contract.range,
            "channel_order": contract.channel_order,
            "files": files,
        }
        what = f"{len(files)} images"
    header = tensorfile.write(output, tensor, **info)
    click.echo(f"wrote {output} ({header['dtype']} {header['shape']}, {what})")


@click.command("score")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Upstream TIGAS checkpoint to run in PyTorch (default: the hub weights).",
)
@click.option(
    "--model",
    "model_file",
    type=click.Path(path_type=Path),
    help="Exported scorer instead: .onnx (ONNX Runtime, CPU), TorchScript .pt, or .pt2 "
    "(torch.export program; an AOTInductor package needs --trust-artifact).",
)
@click.option(
    "--img-size",
    type=click.IntRange(MIN_SIDE, MAX_IMAGE_SIDE),
    help="Resize side with --checkpoint (default: the checkpoint's, else 256); an "
    "exported model's own preprocessing contract decides for --model.",
)
@click.option(
    "--heads",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Attention heads of a full-mode checkpoint (not stored in the file).",
)
@click.option(
    "--input-range",
    type=click.Choice(["[0,1]", "[-1,1]"]),
    default="[0,1]",
    show_default=True,
    help="Input range the checkpoint's model expects.",
)
@click.option(
    "--trust-checkpoint",
    is_flag=True,
    help="Load a checkpoint that needs arbitrary unpickling (trusted files only).",
)
@trust_artifact_option
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(0, 64),
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Threads decoding and resizing images ahead of inference (0: decode between batches).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    help="Threads of one inference (ONNX Runtime intra-op, or torch); default: the runtime's "
    "own, one per physical core.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the scores to FILE (.csv, .jsonl or .parquet) batch by batch instead of printing them.",
)
@click.option("--resume", is_flag=True, help="Continue -o FILE: skip the images it already holds.")
@click.option(
    "--shard",
    metavar="I/N",
    help="Score only shard I of N (1 <= I <= N): N machines given the same images split them.",
)
@click.option(
    "--device", help="Torch device for --checkpoint: cpu, cuda or cuda:N (default: cuda if available)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of a table.")
def score_command(
    paths,
    checkpoint,
    model_file,
    img_size,
    heads,
    input_range,
    trust_checkpoint,
    trust_artifact,
    batch_size,
    workers,
    threads,
    output,
    resume,
    shard,
    device,
    as_json,
    as_csv,
) -> None:
    """Score images (files or folders, recursive) with TIGAS: 1 = real, 0 = generated.

    Images are decoded by --workers threads while the model scores the previous batch; memory
    stays bounded by --batch-size whatever the number of images. With -o FILE each batch is
    written as soon as it is scored, and --resume continues a run that was stopped.
    """
    from lossport.models.tigas import TIGAS
    from lossport.scoring import ArtifactScorer

    if checkpoint is not None and model_file is not None:
        raise ConfigError("give --checkpoint or --model, not both")
    if trust_artifact and model_file is None:
        raise ConfigError("--trust-artifact applies to an exported --model")
    if as_json and as_csv:
        raise ConfigError("give --json or --csv, not both")
    if output is not None and (as_json or as_csv):
        raise ConfigError(
            "-o FILE writes the scores to FILE (its suffix sets the format); --json and --csv print them: give one"
        )
    if resume and output is None:
        raise ConfigError("--resume continues an -o FILE: give -o")
    selected = Shard.parse(shard) if shard is not None else None
    sources, skipped = image_io.collect_sources(paths)
    if selected is not None:
        sources = selected.select(sources)
    existing = _existing_output(output, resume) if output is not None else None
    if model_file is not None:
        if img_size is not None or trust_checkpoint or device is not None:
            raise ConfigError(
                "--img-size, --trust-checkpoint and --device apply to --checkpoint; "
                "an exported --model brings its own preprocessing contract"
            )
        runner = ArtifactScorer(model_file, threads, trust_artifact)
    else:
        if output is not None and checkpoint is None:
            checkpoint = download_checkpoint()  # its sha256 goes in the file's header
        runner = TIGAS(
            checkpoint,
            img_size=img_size,
            device=device,
            num_attention_heads=heads,
            input_range=input_range,
            trust_checkpoint=trust_checkpoint,
        )
    if threads is not None:
        torch.set_num_threads(threads)
    writer = None
    if output is not None:
        record = FileRecord.of(model_file if model_file is not None else checkpoint)
        header = Header(
            record.file,
            record.sha256,
            json.loads(runner.preprocess.to_json()),
            str(selected) if selected else None,
        )
        conflict = existing.header.conflict(header) if existing and existing.header else None
        if conflict is not None:
            raise ScoreFileError(
                f"{output} {conflict}; continue it with the same model and --shard, or choose another -o file"
            )
        done = existing.paths if existing is not None else set()
        sources = [s for s in sources if str(s.path) not in done]
        writer = open_writer(output, header, existing)
    fmt = "json" if as_json else "csv" if as_csv else "table"
    report = ScoreReport(skipped=skipped)
    count = 0
    try:
        with terminate_as_exit():
            for scores in iter_scores(
                runner, sources, skipped, batch_size, any(p.is_dir() for p in paths), workers
            ):
                if writer is not None:
                    writer.write([(s.path, s.score, *s.logits) for s in scores])
                elif fmt == "json":
                    report.scores.extend(scores)
                else:
                    click.echo(
                        "\n".join(([render_heading(fmt)] if count == 0 else []) + render_rows(scores, fmt))
                    )
                count += len(scores)
            if count == 0 and not (existing and existing.paths) and selected is None:
                raise ImageError(
                    f"no readable images in {', '.join(map(str, paths))} ({len(skipped)} files skipped)"
                )
    except BaseException as exc:
        if writer is not None:
            writer.close(keep=isinstance(exc, (KeyboardInterrupt, SystemExit)))
        raise
    if writer is not None:
        writer.close()
    if fmt == "json" and writer is None:
        click.echo(report.render("json"))
    for item in skipped:
        click.echo(f"skipped {item.path}: {item.reason}", err=True)
    kept = f" ({len(existing.paths)} already in {output})" if existing and existing.paths else ""
    wrote = f"; wrote {output}" if output is not None else ""
    click.echo(
        f"scored {count} image{'s' if count != 1 else ''}{kept}, skipped "
        f"{len(skipped)} file{'s' if len(skipped) != 1 else ''}{wrote}",
        err=True,
    )


def _existing_output(output: Path, resume: bool) -> Optional[Existing]:
    """Check ``-o FILE`` before any work: its suffix, its folder, and an existing file's
    contents (only with ``--resume``)."""
    if kind_of(output) == "parquet":
        pyarrow_modules()
    check_writable(output)
    if not output.exists():
        return None
    if not resume:
        raise ConfigError(f"{output} exists: add --resume to continue it, or remove it")
    return read_existing(output)
