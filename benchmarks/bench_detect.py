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
[--hours 168] [--runs 1] [--markdown docs/precision.md]`` (``--runs 5``: the case is
loaded once, the pack run five times, and each rule's median printed; the machine may
be shared; ``--markdown``: the precision tables also written as markdown, as in
docs/precision.md).
"""

from __future__ import annotations

import argparse
import json
import os
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


def precision(markdown: Path | None = None) -> None:
    """Print the per-rule tables and the ranking of each case; with ``markdown``, write them."""
    results: list[tuple[str, str, pd.DataFrame]] = []
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
        medium = findings["severity"] == "medium"
        days = (case.activity["time"].max() - case.activity["time"].min()).total_seconds() / 86400
        line = (
            f"{len(case.activity):,} events over {days:.1f} days, {len(findings):,} findings"
            f"; high/critical {int(high.sum())} ({int((high & ~true).sum())} false), medium "
            f"{int(medium.sum())} ({int((medium & ~true).sum())} false)"
        )
        print(f"\n== {name}: {line} in {seconds:.1f} s")
        per_rule = table(findings, true)
        print(per_rule.to_string())
        if steps:
            found = [any(step.intersection(e) for e in findings["evidence"]) for step in steps]
            print(f"attack steps found: {sum(found)} of {len(steps)}")
            ranked = kf.incidents(findings, kf.build_graph(case))
            rank = first_step_rank(findings, ranked, steps[0])
            print(f"incidents: {len(ranked)}; the first attack step is in incident #{rank}")
            print(ranked.head(5)[["score", "origin", "rules", "story"]].to_string())
            line += (
                f"; attack steps found {sum(found)} of {len(steps)}; the first step is in "
                f"incident #{rank} of {len(ranked)}"
            )
        results.append((name, line, per_rule))
    if markdown is not None:
        markdown.write_text(precision_markdown(results))
        print(f"\nwrote {markdown}")


def first_step_rank(findings: pd.DataFrame, ranked: pd.DataFrame, first: set[str]) -> int | None:
    """The rank of the first incident whose findings hold an event of the attack's first step."""
    for i, ids_ in enumerate(ranked["finding_ids"]):
        evidence = findings.loc[findings["finding_id"].isin(ids_), "evidence"]
        if any(first.intersection(e) for e in evidence):
            return i + 1
    return None


def precision_markdown(results: list[tuple[str, str, pd.DataFrame]]) -> str:
    """The per-rule tables of ``precision`` as markdown: one overview, then one per case."""
    names = [name for name, _, _ in results]
    rules = sorted(set().union(*(set(per_rule.index) for _, _, per_rule in results)))
    out = [
        "# Precision of the rule pack",
        "",
        "Generated by `cd benchmarks && ../.venv/bin/python bench_detect.py precision "
        "--markdown ../docs/precision.md`; do not edit by hand. Four cases, two "
        "organisation profiles: `acme` (the bundled `benign-week` and "
        "`incident-leaked-ci-key`, the first two days the baseline) and `fintech` (ten days "
        "generated with `profile='fintech'`: SRE jump roles, nightly CI chaining roles "
        "across accounts, Terraform plans, on-call nights, an office NAT, key rotations and "
        "a new hire; the first three days the baseline), each once without and once with "
        "attacks. A finding is true when its evidence holds an event or request of the "
        "truth's attack steps; every finding on a benign case is false. Severity counts "
        "are low / medium / high / critical.",
        "",
    ]
    out += [f"- **{name}**: {line}." for name, line, _ in results]
    out += [
        "",
        "## Per rule, all four cases",
        "",
        "Each cell: findings (true, false), then low / medium / high / critical; – for "
        "none. Rules not listed raised nothing on any of the four cases.",
        "",
        "| rule | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for rule_id in rules:
        cells = []
        for _, _, per_rule in results:
            if rule_id not in per_rule.index:
                cells.append("–")
                continue
            row = per_rule.loc[rule_id]
            levels = " / ".join(str(int(row[level])) for level in SEVERITIES)
            cells.append(f"{row['findings']} ({row['true']} true, {row['false']} false) · {levels}")
        out.append(f"| {rule_id} | " + " | ".join(cells) + " |")
    columns = ["findings", "true", "false", *SEVERITIES]
    for name, line, per_rule in results:
        out += ["", f"## {name}", "", f"{line}.", ""]
        out.append("| rule | " + " | ".join(columns) + " |")
        out.append("|---|" + "---:|" * len(columns))
        for rule_id, row in per_rule.iterrows():
            out.append(f"| {rule_id} | " + " | ".join(str(int(row[c])) for c in columns) + " |")
        totals = per_rule[columns].sum()
        out.append("| **all** | " + " | ".join(f"**{int(totals[c])}**" for c in columns) + " |")
    return "\n".join(out) + "\n"


def scale(hours: int, kms_per_hour: float, runs: int = 1) -> None:
    """Time the whole pack on about a million events: per rule, the median of ``runs``."""
    case = load_case(hours, kms_per_hour)
    totals: list[float] = []
    seconds: dict[str, list[float]] = {}
    cpu: list[float] = []
    loads = [os.getloadavg()[0]]
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kf.DetectionNote)
            findings = kf.detect(case, window_start=START + timedelta(hours=20))
        totals.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        loads.append(os.getloadavg()[0])
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
    print(
        f"CPU time of the process: {statistics.median(cpu):.1f} s median "
        f"({', '.join(f'{t:.1f}' for t in cpu)}); load average (1 min) "
        f"{', '.join(f'{load:.1f}' for load in loads)} before and after each run"
    )


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", default="all", choices=("precision", "scale", "all"))
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    parser.add_argument("--runs", type=int, default=1, help="scale: runs, medians printed")
    parser.add_argument(
        "--markdown", type=Path, default=None, help="precision: also write the tables here"
    )
    args = parser.parse_args(argv)
    if args.what in ("precision", "all"):
        precision(args.markdown)
    if args.what in ("scale", "all"):
        scale(args.hours, args.kms_per_hour, args.runs)


if __name__ == "__main__":
    main()
