"""Image sources to batches: decoding in worker threads, overlapped with whatever consumes the
batches, in bounded memory.

Decoding and resizing run in ``workers`` threads: Pillow releases the GIL while it decodes and
resizes, so threads overlap with inference without copying pixels between processes (on two
cores they decode faster than worker processes, which pay to pickle every image back;
``benchmarks/bench_score.py`` measures both). ``workers=0`` decodes in the calling thread, one
image at a time.

Memory: at most ``prefetch * batch_size`` images are decoded or being decoded ahead of the
consumer, and at most ``MAX_GROUPS * batch_size`` wait in partial batches, whatever the number
of sources. Images are grouped by their decoded shape: with a fixed ``size`` every image has
it and batches keep the sources' order; with ``size=None`` (images at their own size) a
batch holds images of one shape, and when more than ``MAX_GROUPS`` shapes wait, the oldest
partial batch goes out early.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Deque, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import torch

from lossport.errors import ConfigError
from lossport.io.images import ImageSource, Size, Skipped, read_source

MAX_GROUPS = 4
Batch = Tuple[List[str], torch.Tensor]  # (paths, images [n, 3, H, W])
Decoded = Tuple[ImageSource, Union[torch.Tensor, Skipped]]


def load_batches(
    sources: Sequence[ImageSource],
    size: Optional[Size],
    batch_size: int,
    skipped: List[Skipped],
    workers: int = 0,
    prefetch: int = 2,
) -> Iterator[Batch]:
    """Yield ``(paths, images [n, 3, H, W])``, up to ``batch_size`` readable images of one shape
    each (RGB in ``[0, 1]``, resized to ``size = (H, W)`` when given).

    An unreadable explicit source raises :class:`~lossport.errors.ImageError` when its turn
    comes; an unreadable found one is appended to ``skipped`` and left out. Closing the
    generator early cancels the decoding still queued.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if workers < 0 or prefetch < 1:
        raise ConfigError(f"workers must be >= 0 and prefetch >= 1, got {workers} and {prefetch}")
    if workers == 0:
        decoded: Iterable[Decoded] = ((s, read_source(s, size)) for s in sources)
        yield from _group_by_shape(decoded, batch_size, skipped)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lossport-decode")
    try:
        yield from _group_by_shape(
            _decode_ahead(pool, sources, size, prefetch * batch_size), batch_size, skipped
        )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _decode_ahead(
    pool: ThreadPoolExecutor, sources: Sequence[ImageSource], size: Optional[Size], window: int
) -> Iterator[Decoded]:
    """``read_source`` of each source in order, with up to ``window`` submitted ahead."""
    pending: Deque[Tuple[ImageSource, Future]] = deque()
    upcoming = iter(sources)
    for source in upcoming:
        pending.append((source, pool.submit(read_source, source, size)))
        if len(pending) >= window:
            break
    while pending:
        source, future = pending.popleft()
        result = future.result()
        following = next(upcoming, None)
        if following is not None:
            pending.append((following, pool.submit(read_source, following, size)))
        yield source, result


def _group_by_shape(decoded: Iterable[Decoded], batch_size: int, skipped: List[Skipped]) -> Iterator[Batch]:
    groups: "OrderedDict[Tuple[int, ...], Tuple[List[str], List[torch.Tensor]]]" = OrderedDict()
    for source, result in decoded:
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        names, tensors = groups.setdefault(tuple(result.shape), ([], []))
        names.append(str(source.path))
        tensors.append(result)
        if len(tensors) == batch_size:
            del groups[tuple(result.shape)]
            yield names, torch.stack(tensors)
        elif len(groups) > MAX_GROUPS:
            _, (names, tensors) = groups.popitem(last=False)
            yield names, torch.stack(tensors)
    for names, tensors in groups.values():
        yield names, torch.stack(tensors)
