"""TIGAS ranking term: lossport's vectorised [B, B] pair matrix vs the double Python loop of the
seed document (000), side by side in one run.

    python benchmarks/bench_tigas_ranking.py [--batch 256] [--repeats 5] [--threads 1] [--backward]

Random scores in [0, 1], half of the batch real. Prints the median time of each (the fast one
is repeated 20 times as often), the speed ratio, and the largest absolute difference between
the two results (and gradients with ``--backward``), which must be round-off only. One intra-op
thread by default: the loop cannot use more, and on a busy machine waking idle threads costs
more than a 256 x 256 operation.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Tuple

import torch

from lossport.losses.tigas import pairwise_ranking_loss


def loop_ranking_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """The seed document's pair loop: every real x fake pair, one Python iteration each."""
    real_scores = scores[labels > 0.5]
    fake_scores = scores[labels <= 0.5]
    loss = scores.new_zeros(())
    for score_r in real_scores:
        for score_f in fake_scores:
            loss = loss + torch.clamp(margin - (score_r - score_f), min=0.0)
    return loss / max(len(real_scores) * len(fake_scores), 1)


def vectorised_ranking_loss(scores: torch.Tensor, labels: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    return pairwise_ranking_loss(scores, labels > 0.5, margin)


def _timed(fn: Callable[[], Tuple[torch.Tensor, torch.Tensor]], repeats: int):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backward", action="store_true", help="time forward + backward")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    generator = torch.Generator().manual_seed(args.seed)
    scores = torch.rand(args.batch, generator=generator)
    labels = torch.zeros(args.batch)
    labels[torch.randperm(args.batch, generator=generator)[: args.batch // 2]] = 1.0

    def run(loss_fn):
        def once():
            leaf = scores.clone().requires_grad_(True)
            loss = loss_fn(leaf, labels)
            if args.backward:
                (grad,) = torch.autograd.grad(loss, leaf)
            else:
                grad = torch.zeros_like(leaf)
            return loss.detach(), grad

        return once

    loop_time, (loop_loss, loop_grad) = _timed(run(loop_ranking_loss), args.repeats)
    vec_time, (vec_loss, vec_grad) = _timed(run(vectorised_ranking_loss), 20 * args.repeats)

    pairs = int((labels > 0.5).sum()) * int((labels <= 0.5).sum())
    what = "forward + backward" if args.backward else "forward"
    print(
        f"TIGAS ranking loss, batch {args.batch} ({pairs} real x fake pairs), {what}, "
        f"median of {args.repeats} (loop) / {20 * args.repeats} (matrix), torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"  python pair loop (seed 000): {loop_time * 1e3:10.3f} ms   loss {loop_loss.item():.8f}")
    print(f"  vectorised [B, B] matrix   : {vec_time * 1e3:10.3f} ms   loss {vec_loss.item():.8f}")
    print(f"  speed ratio: {loop_time / vec_time:.0f}x")
    print(
        f"  max abs difference: loss {(loop_loss - vec_loss).abs().item():.3e}"
        + (f", gradient {(loop_grad - vec_grad).abs().max().item():.3e}" if args.backward else "")
        + " (float32 summation order)"
    )
    exact = (
        (loop_ranking_loss(scores.double(), labels) - vectorised_ranking_loss(scores.double(), labels))
        .abs()
        .item()
    )
    print(f"  max abs difference in float64: loss {exact:.3e}")


if __name__ == "__main__":
    main()
