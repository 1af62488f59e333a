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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import networkx as nx
import psutil

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


def load_case(hours: int, rate: float) -> kf.Case:
    """Load the generated case (making it first if needed) and say what it holds."""
    case = kf.load(case_folder(hours, rate) / "evidence", progress=False)
    print(
        f"case: {len(case.activity):,} activity rows ({len(case.kms):,} KMS, "
        f"{len(case.actiontrail):,} ActionTrail), {sys.version.split()[0]}"
    )
    return case


def naive(case: kf.Case) -> nx.MultiDiGraph:
    """One add_edge per event for every relation kf.build_graph makes (the approach it replaces)."""
    graph = nx.MultiDiGraph()
    for row in case.activity.itertuples(index=False):
        key = row.access_key_id if isinstance(row.access_key_id, str) else None
        holder = None
        if row.identity_type == "ram-user" and isinstance(row.principal_id, str):
            holder = f"ram-user:{row.principal_id}"
        elif row.identity_type == "aap" and isinstance(row.principal_id, str):
            holder = f"aap:{row.account_id}/{row.principal_id}"
        elif row.identity_type == "ram-role" and isinstance(row.session_name, str):
            holder = f"role-session:{row.principal_id}:{row.session_name}"
        if holder is not None:
            graph.add_edge(f"account:{row.account_id}", holder, relation="owns", time=row.time)
        if key is None:
            continue
        credential = f"access-key:{key}"
        if holder is not None:
            graph.add_edge(holder, credential, relation="has-key", time=row.time)
        if isinstance(row.client_ip, str):
            graph.add_edge(
                f"ip:{row.client_ip}",
                credential,
                relation="source-of",
                time=row.time,
                action=row.action,
            )
        if isinstance(row.key_id, str):
            graph.add_edge(
                credential, f"key:{row.key_id}", relation="called", time=row.time, action=row.action
            )
        if isinstance(row.secret_name, str):
            graph.add_edge(
                credential,
                f"secret:{row.account_id}/{row.secret_name}",
                relation="called",
                time=row.time,
                action=row.action,
            )
    for row in case.kms.itertuples(index=False):
        instance = f"kms-instance:{row.instance_id}"
        graph.add_edge(f"account:{row.user_id}", instance, relation="owns", time=row.time)
        if isinstance(row.key_id, str):
            graph.add_edge(instance, f"key:{row.key_id}", relation="hosts", time=row.time)
            if isinstance(row.key_version_id, str):
                graph.add_edge(
                    f"key:{row.key_id}",
                    f"key-version:{row.key_version_id}",
                    relation="has-version",
                    time=row.time,
                )
        if isinstance(row.secret_name, str):
            secret = f"secret:{row.account_id}/{row.secret_name}"
            graph.add_edge(instance, secret, relation="hosts", time=row.time)
            if isinstance(row.key_id, str):
                graph.add_edge(secret, f"key:{row.key_id}", relation="encrypted-by", time=row.time)
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--kms-per-hour", type=float, default=10500.0)
    args = parser.parse_args()
    case = load_case(args.hours, args.kms_per_hour)
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    graph = kf.build_graph(case)
    fast = time.perf_counter() - started
    fast_memory = (process.memory_info().rss - before) / 2**20
    before = process.memory_info().rss
    started = time.perf_counter()
    slow_graph = naive(case)
    slow = time.perf_counter() - started
    slow_memory = (process.memory_info().rss - before) / 2**20
    print(f"{'':22}{'seconds':>9}{'nodes':>10}{'edges':>11}{'RSS growth MB':>15}")
    print(
        f"{'kf.build_graph':22}{fast:9.2f}{graph.number_of_nodes():10,}"
        f"{graph.number_of_edges():11,}{fast_memory:15,.0f}"
    )
    print(
        f"{'add_edge per event':22}{slow:9.2f}{slow_graph.number_of_nodes():10,}"
        f"{slow_graph.number_of_edges():11,}{slow_memory:15,.0f}"
    )
    print(
        f"aggregated build is {slow / fast:.1f}x faster, with "
        f"{slow_graph.number_of_edges() / max(graph.number_of_edges(), 1):.0f}x fewer edges"
    )


if __name__ == "__main__":
    main()
