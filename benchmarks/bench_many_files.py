"""Benchmark kf.load on many small files, lenient and strict, with peak memory.

Writes N one-record files into one temporary folder, then loads the folder in a
fresh process per mode and prints the wall time, the peak RSS and the RSS per file.
Layouts: ``lines`` (each file an ActionTrail event as a JSON line, the line
reader's path) and ``mixed`` (every other file a KMS record in a JSON array, the
fast array reader's path, in folders of 1,000).

Usage: ``python benchmarks/bench_many_files.py [--files 10000] [--modes lenient strict]
[--layouts lines mixed]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, time, warnings
import kmsforensics as kf
warnings.simplefilter("ignore")
start = time.perf_counter()
case = kf.load(sys.argv[1], strict=sys.argv[2] == "strict", progress=False)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(seconds, peak, len(case.kms) + len(case.actiontrail), len(case.manifest))
"""
BASELINE = (
    "import resource, kmsforensics; "
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"
)


def write_files(folder: Path, count: int, layout: str) -> None:
    """Write ``count`` one-record files (``mixed``: odd ones KMS arrays, in subfolders)."""
    for i in range(count):
        sub = folder / f"d{i // 1000:03d}" if layout == "mixed" else folder
        sub.mkdir(exist_ok=True)
        if i % 2 and layout == "mixed":
            record = {
                "request_id": f"many-{i:06d}",
                "time": f"2026-07-01T{i % 24:02d}:00:{i % 60:02d}Z",
                "api_name": "Decrypt",
                "client_ip": f"10.9.{i % 200}.{i % 250}",
                "key_id": "key-many000000000000001",
            }
            (sub / f"kms-{i:06d}.json").write_text(json.dumps([record]))
        else:
            event = {
                "eventId": f"many-{i:06d}",
                "eventTime": f"2026-07-01T{i % 24:02d}:{i % 60:02d}:00Z",
                "eventName": "DescribeKey",
                "userIdentity": {"type": "ram-user", "principalId": "2880001", "userName": "u"},
                "sourceIpAddress": "203.0.113.9",
            }
            (sub / f"at-{i:06d}.jsonl").write_text(json.dumps(event) + "\n")


def main() -> None:
    """Write the files, load them in each mode in a fresh process, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--modes", nargs="+", default=["lenient", "strict"])
    parser.add_argument("--layouts", nargs="+", default=["lines", "mixed"])
    args = parser.parse_args()
    base = int(subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    print(f"{args.files:,} one-record files; the package alone: {base / 2**20:.0f} MiB RSS")
    for layout in args.layouts:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_files(folder, args.files, layout)
            run(folder, layout, args.modes, base)


def run(folder: Path, layout: str, modes: list[str], base: int) -> None:
    """Load ``folder`` once per mode, each in a fresh process; print the figures."""
    for mode in modes:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), mode],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        seconds, peak, events, files = float(out[0]), int(out[1]), int(out[2]), int(out[3])
        print(
            f"{layout:>6} {mode:>8}: {seconds:6.1f} s, {files:,} files, {events:,} events, "
            f"peak RSS {peak / 2**20:,.0f} MiB "
            f"({(peak - base) / files / 1024:,.1f} KiB a file above the package)"
        )


if __name__ == "__main__":
    main()
