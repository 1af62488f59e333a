"""Benchmark the synthetic evidence generator: events written per second, peak RSS.

Usage: ``python benchmarks/bench_synth.py [--hours 168] [--kms-per-hour 600]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from kmsforensics import synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=600.0)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="kmsforensics-synth-"))
    try:
        started = time.perf_counter()
        summary = synth.generate(
            out,
            seed=1,
            start=datetime(2026, 3, 2, tzinfo=UTC),
            hours=args.hours,
            kms_per_hour=args.kms_per_hour,
        )
        seconds = time.perf_counter() - started
        counts = summary["counts"]
        events = counts["actiontrail_events"] + counts["kms_records"]
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{events:,} events ({counts['actiontrail_events']:,} ActionTrail, "
            f"{counts['kms_records']:,} KMS) in {counts['files']:,} files, "
            f"{size / 1e6:.1f} MB gz"
        )
        print(f"{seconds:.1f} s: {events / seconds:,.0f} events/s written; peak RSS {peak:,.0f} MB")
    finally:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
