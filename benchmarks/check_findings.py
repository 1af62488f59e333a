"""Check that the rule pack's findings have not changed: save them once, compare later.

For speed work on the rules: ``save`` writes the findings of ``kf.detect`` (their
``finding_id``, ``rule_id``, ``severity``, ``entity``, ``first_seen``, ``last_seen``,
``event_count`` and ``summary``) on the curated ``benign-week`` and
``incident-leaked-ci-key`` and on the million-event case of ``bench_graph.py`` to
``benchmarks/data/findings/``; ``check`` runs the pack again and prints every finding
that appeared, disappeared or changed, rule by rule, and exits 1 if any did.

Usage: ``python benchmarks/check_findings.py save|check [--cases curated|scale|all]
[--hours 168] [--kms-per-hour 10500]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from bench_graph import START, load_case

import kmsforensics as kf

HERE = Path(__file__).parent
SAVED = HERE / "data" / "findings"
#: What a finding is compared on (``finding_id`` hashes rule, entity and evidence).
KEPT = [
    "finding_id",
    "rule_id",
    "severity",
    "entity",
    "first_seen",
    "last_seen",
    "event_count",
    "summary",
]


def findings_of(name: str, hours: int, rate: float) -> pd.DataFrame:
    """Run the whole pack on one case; return the compared columns, in a stable order."""
    if name == "scale":
        case = load_case(hours, rate)
        window: Any = START + timedelta(hours=20)
    else:
        case = kf.load(kf.datasets.path(name) / "evidence", progress=False)
        window = None
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        found = kf.detect(case, window_start=window)
    print(f"{name}: {len(found):,} findings in {time.perf_counter() - started:.1f} s")
    out = found[KEPT].astype(str)
    return out.sort_values(KEPT, kind="stable").reset_index(drop=True)


def differences(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Rows only in one of the two frames, with a ``side`` column (``before``/``after``)."""
    both = before.merge(after, how="outer", on=KEPT, indicator=True)
    only = both[both["_merge"] != "both"].copy()
    only["side"] = only["_merge"].map({"left_only": "before", "right_only": "after"})
    return only.drop(columns="_merge")


def main(argv: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("save", "check"))
    parser.add_argument("--cases", default="all", choices=("curated", "scale", "all"))
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    args = parser.parse_args(argv)
    names = {
        "curated": ["benign-week", "incident-leaked-ci-key"],
        "scale": ["scale"],
        "all": ["benign-week", "incident-leaked-ci-key", "scale"],
    }[args.cases]
    SAVED.mkdir(parents=True, exist_ok=True)
    changed = False
    for name in names:
        found = findings_of(name, args.hours, args.kms_per_hour)
        path = SAVED / f"{name}.csv"
        if args.what == "save":
            found.to_csv(path, index=False)
            print(f"saved {len(found):,} findings to {path}")
            continue
        saved = pd.read_csv(path, dtype=str, keep_default_na=False)
        diff = differences(saved, found)
        if len(diff):
            changed = True
            print(f"{name}: {len(diff)} findings differ")
            print(diff.groupby(["rule_id", "side"]).size().to_string())
            print(diff.head(20).to_string())
        else:
            print(f"{name}: identical ({len(found):,} findings)")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
