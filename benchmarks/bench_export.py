"""Benchmark the hand-over formats on the bundled incident: OCSF, BloodHound, Sigma.

Prints seconds and sizes of ``kf.export_ocsf`` (JSON Lines and Parquet, with the
findings), ``kf.export_bloodhound`` and ``kf.detect_sigma`` (the shipped rules).

Usage: ``python benchmarks/bench_export.py``
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import kmsforensics as kf
from kmsforensics.detections import sigma


def main() -> None:
    case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        findings = kf.detect(case)
    events = len(case.kms) + len(case.actiontrail)
    folder = Path(tempfile.mkdtemp())
    for name in ("incident.ocsf.jsonl", "incident.ocsf.parquet"):
        started = time.perf_counter()
        out = kf.export_ocsf(case, folder / name, findings=findings)
        seconds = time.perf_counter() - started
        print(
            f"export_ocsf {out.suffix:9} {seconds:6.1f} s  {out.stat().st_size / 1e6:7.1f} MB"
            f"  {events + len(findings):,} events ({events / seconds:,.0f} records/s)"
        )
    graph = kf.build_graph(case)
    started = time.perf_counter()
    out = kf.export_bloodhound(graph, folder / "incident.bloodhound.json")
    seconds = time.perf_counter() - started
    print(
        f"export_bloodhound      {seconds:6.1f} s  {out.stat().st_size / 1e6:7.1f} MB"
        f"  {graph.number_of_nodes():,} nodes, {graph.number_of_edges():,} edges"
    )
    started = time.perf_counter()
    found = kf.detect_sigma(case, [sigma.EXAMPLES, sigma.SIGMAHQ])
    seconds = time.perf_counter() - started
    rules = len(list(sigma.EXAMPLES.glob("*.yml"))) + len(list(sigma.SIGMAHQ.glob("*.yml")))
    print(f"detect_sigma           {seconds:6.1f} s  {rules} rule files, {len(found)} findings")


if __name__ == "__main__":
    main()
