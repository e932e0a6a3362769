"""Wall time of `lossport validate all` (CPU backends) and where it goes.

Runs the command in fresh processes, once per --jobs value (default 1 and one per CPU, side by
side in this run), and prints each wall time, the speed-up, and from the JSON report of the
last run the specs that took longest, split into artifact exports and backend runs.

    python benchmarks/bench_validate_all.py [--jobs 1,2] [--top 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lossport.validation.suite import available_cpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", default=f"1,{available_cpus()}")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    walls = {}
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "validate.json"
        for jobs in args.jobs.split(","):
            command = [
                sys.executable,
                "-m",
                "lossport",
                "validate",
                "all",
                "--backends",
                "eager,torchscript,ort-cpu",
                "--jobs",
                jobs,
                "--json",
                str(report),
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls[jobs] = time.perf_counter() - start
            print(f"lossport validate all --jobs {jobs}: {walls[jobs]:6.1f} s wall")
        specs = json.loads(report.read_text())["specs"]
    first, last = list(walls)[0], list(walls)[-1]
    if first != last:
        print(f"speed-up --jobs {last} over --jobs {first}: {walls[first] / walls[last]:.2f}x")
    export = sum(s["seconds"]["export"] for s in specs)
    run = sum(s["seconds"]["run"] for s in specs)
    print(
        f"{len(specs)} specs; summed over specs (--jobs {last}): exports {export:.1f} s, "
        f"backend runs and comparisons {run:.1f} s"
    )
    print("longest:")
    for spec in sorted(specs, key=lambda s: -sum(s["seconds"].values()))[: args.top]:
        print(
            f"  {spec['spec']:28s} export {spec['seconds']['export']:5.1f} s  "
            f"run {spec['seconds']['run']:5.1f} s"
        )


if __name__ == "__main__":
    main()
