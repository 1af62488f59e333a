"""Benchmark the rule pack: precision on benign and incident cases, and speed at scale.

``precision``: four cases, two organisation profiles (``acme``: the curated
``benign-week`` and ``incident-leaked-ci-key``; ``fintech``: ten days of a bigger
organisation with SRE jump roles, nightly CI chaining roles across accounts, Terraform
plans, on-call nights, an office NAT, key rotations and a new hire, generated under
benchmarks/data/, once without and once with attacks). For each case and rule it prints
the findings by severity and how many are true (a finding is true when its evidence
holds an event or request of the truth's attack steps), then where the incidents of
``kf.incidents`` rank the attack's first step.

``scale``: kf.detect over about a million events (the case of ``bench_graph.py``),
the seconds each rule took and the findings it made.

Usage: ``python benchmarks/bench_detect.py [precision|scale|all] [--kms-per-hour 10500]
[--hours 168] [--runs 1]`` (``--runs 5``: the case is loaded once, the pack run five
times, and each rule's median printed; the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from bench_graph import START, load_case

import kmsforensics as kf
from kmsforensics import synth
from kmsforensics.detections import SEVERITIES

HERE = Path(__file__).parent
ROOT = HERE.parent
FINTECH_START = datetime(2026, 3, 2, tzinfo=UTC)
#: The fintech cases: ten days, the first three the baseline.
FINTECH_WINDOW = FINTECH_START + timedelta(days=3)
FINTECH_ATTACKS = (
    ("sre-path-theft", FINTECH_START + timedelta(days=5, hours=13, minutes=30)),
    ("console-trail-tampering", FINTECH_START + timedelta(days=8, hours=16, minutes=10)),
)


def fintech_case(with_attacks: bool) -> Path:
    """Generate (once) the fintech profile's ten days, with or without the attacks."""
    out = HERE / "data" / ("fintech-incident" if with_attacks else "fintech-benign")
    if not (out / "truth.json").exists():
        synth.generate(
            out,
            seed=2026,
            start=FINTECH_START,
            hours=240,
            kms_per_hour=1000,
            scenarios=FINTECH_ATTACKS if with_attacks else (),
            profile="fintech",
            title="Fintech, ten days" + (", with attacks" if with_attacks else ""),
        )
    return out


def cases() -> list[tuple[str, Path, datetime | None]]:
    """The four cases: name, folder (evidence/ and truth.json), window start."""
    datasets = ROOT / "datasets"
    return [
        ("acme benign", datasets / "benign-week", None),
        ("acme incident", datasets / "incident-leaked-ci-key", None),
        ("fintech benign", fintech_case(False), FINTECH_WINDOW),
        ("fintech incident", fintech_case(True), FINTECH_WINDOW),
    ]


def truth_ids(folder: Path) -> tuple[set[str], list[set[str]]]:
    """Every attack event and request id of a case, and the ids of each step."""
    truth = json.loads((folder / "truth.json").read_text())
    steps = [
        set(step["event_ids"]) | set(step["request_ids"])
        for scenario in truth["scenarios"]
        for step in scenario["steps"]
    ]
    return set().union(*steps) if steps else set(), steps


def score(findings: pd.DataFrame, ids: set[str]) -> pd.Series:
    """True where a finding's evidence holds an attack's event or request."""
    return findings["evidence"].map(lambda evidence: bool(ids.intersection(evidence)))


def table(findings: pd.DataFrame, true: pd.Series) -> pd.DataFrame:
    """Per rule: findings, true, false, and the count at each severity."""
    frame = findings.assign(true=true.to_numpy())
    out = frame.groupby("rule_id").agg(findings=("rule_id", "size"), true=("true", "sum"))
    out["false"] = out["findings"] - out["true"]
    severities = frame.pivot_table(
        index="rule_id", columns="severity", values="title", aggfunc="size", fill_value=0
    )
    for level in SEVERITIES:
        out[level] = severities.get(level, 0)
    return out.fillna(0).astype(int)


def precision() -> None:
    """Print the per-rule tables and the ranking of each case."""
    for name, folder, window in cases():
        case = kf.load(folder / "evidence", progress=False)
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kf.DetectionNote)
            findings = kf.detect(case, window_start=window)
        seconds = time.perf_counter() - started
        ids, steps = truth_ids(folder)
        true = score(findings, ids)
        high = findings["severity"].isin(["high", "critical"])
        days = (case.activity["time"].max() - case.activity["time"].min()).total_seconds() / 86400
        print(
            f"\n== {name}: {len(case.activity):,} events over {days:.1f} days, "
            f"{len(findings):,} findings in {seconds:.1f} s; high/critical "
            f"{int(high.sum())} ({int((high & ~true).sum())} false), medium "
            f"{int((findings['severity'] == 'medium').sum())} "
            f"({int(((findings['severity'] == 'medium') & ~true).sum())} false)"
        )
        print(table(findings, true).to_string())
        if steps:
            found = [any(step.intersection(e) for e in findings["evidence"]) for step in steps]
            print(f"attack steps found: {sum(found)} of {len(steps)}")
            ranked = kf.incidents(findings, kf.build_graph(case))
            first = steps[0]
            rank = next(
                (
                    i + 1
                    for i, ids_ in enumerate(ranked["finding_ids"])
                    if any(
                        first.intersection(e)
                        for e in findings.loc[findings["finding_id"].isin(ids_), "evidence"]
                    )
                ),
                None,
            )
            print(f"incidents: {len(ranked)}; the first attack step is in incident #{rank}")
            print(ranked.head(5)[["score", "origin", "rules", "story"]].to_string())


def scale(hours: int, kms_per_hour: float, runs: int = 1) -> None:
    """Time the whole pack on about a million events: per rule, the median of ``runs``."""
    case = load_case(hours, kms_per_hour)
    totals: list[float] = []
    seconds: dict[str, list[float]] = {}
    for _ in range(runs):
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kf.DetectionNote)
            findings = kf.detect(case, window_start=START + timedelta(hours=20))
        totals.append(time.perf_counter() - started)
        for rule_id, took in findings.attrs["seconds"].items():
            seconds.setdefault(rule_id, []).append(took)
        seconds.setdefault("setup", []).append(totals[-1] - sum(findings.attrs["seconds"].values()))
    counts = findings.groupby("rule_id").size()
    print(f"{'rule':6}{'seconds':>9}{'findings':>10}" + ("  (median of runs)" if runs > 1 else ""))
    for rule_id, took in sorted(seconds.items(), key=lambda item: item[0] == "setup"):
        found = f"{int(counts.get(rule_id, 0)):10,}" if rule_id != "setup" else ""
        print(f"{rule_id:6}{statistics.median(took):9.2f}{found}")
    spread = f" (median of {runs}: {', '.join(f'{t:.1f}' for t in totals)})" if runs > 1 else ""
    print(
        f"whole pack: {statistics.median(totals):.1f} s{spread} for {len(case.activity):,} "
        f"events, {len(findings):,} findings"
    )


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=("precision", "scale", "all"))
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    parser.add_argument("--runs", type=int, default=1, help="scale: runs, medians printed")
    args = parser.parse_args(argv)
    if args.what in ("precision", "all"):
        precision()
    if args.what in ("scale", "all"):
        scale(args.hours, args.kms_per_hour, args.runs)


if __name__ == "__main__":
    main()
