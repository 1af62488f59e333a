"""Benchmark kf.build_graph against a naive build with one add_edge per event.

Generates (once, cached under benchmarks/data/) a synthetic case of about a million
activity rows (normal traffic plus the five attacks), loads it, then measures in the
same run: the aggregated build (kf.build_graph) and a naive per-event build of the same
main relations, with node and edge counts and the memory each graph holds.

Usage: ``python benchmarks/bench_graph.py [--kms-per-hour 10500] [--hours 168]``
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx

import kmsforensics as kf
from kmsforensics import synth

HERE = Path(__file__).parent
START = datetime(2026, 3, 2, tzinfo=UTC)


def case_folder(hours: int, rate: float) -> Path:
    out = HERE / "data" / f"graph-{hours}h-{int(rate)}"
    if not (out / "truth.json").exists():
        scenarios = [
            (name, START + timedelta(hours=24 + 20 * i))
            for i, name in enumerate(synth.scenarios.SCENARIOS)
        ]
        started = time.perf_counter()
        synth.generate(
            out, seed=5, start=START, hours=hours, kms_per_hour=rate, scenarios=scenarios
        )
        print(f"generated the case in {time.perf_counter() - started:.0f} s")
    return out


def naive(activity) -> nx.MultiDiGraph:  # type: ignore[no-untyped-def]
    """One add_edge per event: the approach the aggregated build replaces."""
    graph = nx.MultiDiGraph()
    for row in activity.itertuples(index=False):
        key = row.access_key_id if isinstance(row.access_key_id, str) else None
        if key is None:
            continue
        graph.add_edge(
            f"ip:{row.client_ip}",
            f"access-key:{key}",
            relation="source-of",
            time=row.time,
            action=row.action,
        )
        if isinstance(row.key_id, str):
            graph.add_edge(
                f"access-key:{key}",
                f"key:{row.key_id}",
                relation="called",
                time=row.time,
                action=row.action,
            )
        if isinstance(row.principal_id, str):
            graph.add_edge(
                f"ram-user:{row.principal_id}",
                f"access-key:{key}",
                relation="has-key",
                time=row.time,
            )
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    args = parser.parse_args()
    folder = case_folder(args.hours, args.kms_per_hour)
    case = kf.load(folder / "evidence", progress=False)
    rows = len(case.activity)
    print(
        f"case: {rows:,} activity rows ({len(case.kms):,} KMS, "
        f"{len(case.actiontrail):,} ActionTrail), {sys.version.split()[0]}"
    )
    tracemalloc.start()
    started = time.perf_counter()
    graph = kf.build_graph(case)
    fast = time.perf_counter() - started
    fast_memory = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    tracemalloc.start()
    started = time.perf_counter()
    slow_graph = naive(case.activity)
    slow = time.perf_counter() - started
    slow_memory = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(f"{'':22}{'seconds':>9}{'nodes':>10}{'edges':>11}{'peak MB (py)':>14}")
    print(
        f"{'kf.build_graph':22}{fast:9.2f}{graph.number_of_nodes():10,}"
        f"{graph.number_of_edges():11,}{fast_memory:14,.0f}"
    )
    print(
        f"{'add_edge per event':22}{slow:9.2f}{slow_graph.number_of_nodes():10,}"
        f"{slow_graph.number_of_edges():11,}{slow_memory:14,.0f}"
    )
    print(
        f"aggregated build is {slow / fast:.1f}x faster, with "
        f"{slow_graph.number_of_edges() / max(graph.number_of_edges(), 1):.0f}x fewer edges"
    )


if __name__ == "__main__":
    main()
