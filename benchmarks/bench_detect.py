"""Benchmark the rule pack: kf.detect over about a million events, time per rule.

Uses the generated case of ``bench_graph.py`` (normal traffic plus the five attacks,
cached under benchmarks/data/), loads it, runs every rule and prints the seconds each
took and the findings it made.

Usage: ``python benchmarks/bench_detect.py [--kms-per-hour 10500] [--hours 168]``
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import timedelta

from bench_graph import START, load_case

import kmsforensics as kf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    args = parser.parse_args()
    case = load_case(args.hours, args.kms_per_hour)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        findings = kf.detect(case, window_start=START + timedelta(hours=20))
    total = time.perf_counter() - started
    counts = findings.groupby("rule_id").size()
    print(f"{'rule':6}{'seconds':>9}{'findings':>10}")
    for rule_id, seconds in sorted(findings.attrs["seconds"].items()):
        print(f"{rule_id:6}{seconds:9.2f}{int(counts.get(rule_id, 0)):10,}")
    shared = total - sum(findings.attrs["seconds"].values())
    print(f"{'setup':6}{shared:9.2f}")
    print(
        f"whole pack: {total:.1f} s for {len(case.activity):,} events, {len(findings):,} findings"
    )


if __name__ == "__main__":
    main()
