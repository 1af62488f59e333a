"""Benchmark the case store and the dask engine on a generated case of ~10 million events.

Prints: the ingest rate and the driver's memory during ingest (sampled every 0.2 s, per
quarter of the run, to show it stays flat), the store's size on disk against the gzip
evidence, the time to open the store and answer a one-day query, and the time to build
the graph and run the rule pack on a LocalCluster of 1 and then 2 single-threaded
worker processes, with the speed-up and the driver's peak memory.

The case (30 days, the five attacks) is generated once under benchmarks/data/ (about
25 minutes on 2 cores) and the store is made next to it.

``--big-file GB`` measures instead one JSON-lines KMS file of that many decompressed GB
(written once under benchmarks/data/, as one SLS download gives a whole log): the ingest
rate and the peak memory, which must follow the batch, not the file.

Usage: ``python benchmarks/bench_scale.py [--hours 720] [--kms-per-hour 25400]
[--reuse-store] [--workers 1 2] [--big-file 2]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import psutil
from bench_graph import case_folder

import kmsforensics as kf


class Sampler:
    """Resident memory of this process, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every = every
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            self.samples.append(me.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.samples, default=0) / 2**20

    def quarters_mb(self) -> list[float]:
        n = len(self.samples)
        cuts = [self.samples[i * n // 4 : (i + 1) * n // 4] or [0] for i in range(4)]
        return [max(c) / 2**20 for c in cuts]


@contextmanager
def timed(label: str, results: dict[str, float]) -> Iterator[None]:
    started = time.perf_counter()
    yield
    results[label] = time.perf_counter() - started


def size_of(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def ingest(evidence: Path, store: Path) -> None:
    shutil.rmtree(store, ignore_errors=True)
    with Sampler() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        report = kf.ingest(evidence, out=store, progress=False)
    events = report.events_added["activity"]
    print(
        f"ingest: {report.files_added:,} files, {events:,} events in {report.seconds:.0f} s = "
        f"{events / report.seconds:,.0f} events/s, {len(report.batches)} batches"
    )
    quarters = ", ".join(f"{q:,.0f}" for q in memory.quarters_mb())
    print(f"ingest memory: peak {memory.peak_mb:,.0f} MB; peak per quarter of the run: {quarters}")


def big_file(gigabytes: float) -> Path:
    """One gzip JSON-lines KMS log of ``gigabytes`` decompressed, each record ~770 bytes."""
    import isal.igzip as igzip

    path = Path(__file__).parent / "data" / f"kms-one-file-{gigabytes:g}GB.log.gz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    target, written, n = int(gigabytes * 1e9), 0, 0
    with igzip.open(path.with_suffix(".tmp"), "wb", compresslevel=1) as out:
        while written < target:
            lines = []
            for _ in range(10_000):
                n += 1
                record = {
                    "__time__": 1778300000 + n // 40,
                    "time": f"2026-05-{9 + n // 2_000_000:02d}T{n // 90_000 % 24:02d}:"
                    f"{n // 1500 % 60:02d}:{n // 25 % 60:02d}.{n % 1000:03d}Z",
                    "request_id": f"{n:08x}-6f1c-4d2e-9a3b-{n * 7919 % 16**12:012x}",
                    "api_name": ("GetSecretValue", "Decrypt", "Encrypt", "GenerateDataKey")[n % 4],
                    "status_code": 200 if n % 97 else 403,
                    "client_ip": f"10.{n % 200}.{n // 200 % 250}.{n % 251}",
                    "access_key_id": f"KAAP.{n % 4096:08x}-7c2d-4e5f-8a9b-0c1d2e3f4a5b",
                    "access_key_fingerprint": f"sha256-{n * 2654435761 % 16**48:048x}",
                    "identity_type": "aap",
                    "principal_id": f"svc-{n % 300}",
                    "account_id": "1234567890123456",
                    "user_id": "1234567890123456",
                    "instance_id": "kst-bench0000000000000001",
                    "resource_id": f"key-bench-{n % 500:05d}",
                    "resource_parameters": json.dumps(
                        {"key_id": f"key-bench-{n % 500:05d}", "key_version_id": f"v-{n % 7}"}
                    ),
                    "region_id": "cn-shanghai",
                    "duration": round(0.5 + n % 1000 / 37, 3),
                    "useragent": "aliyun-sdk-java/2.1.0 (Linux; amd64) kms-client/" + str(n % 9),
                    "version": "V1.0",
                }
                lines.append(json.dumps(record).encode())
            block = b"\n".join(lines) + b"\n"
            out.write(block)
            written += len(block)
    path.with_suffix(".tmp").rename(path)
    return path


def ingest_big_file(gigabytes: float) -> None:
    evidence = big_file(gigabytes)
    store = evidence.parent / f"store-one-file-{gigabytes:g}GB"
    shutil.rmtree(store, ignore_errors=True)
    with Sampler() as memory, warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        report = kf.ingest(evidence, out=store, progress=False)
    events = report.events_added["activity"]
    stored = size_of(store)
    print(
        f"one {gigabytes:g} GB JSON-lines file ({evidence.stat().st_size / 2**20:,.0f} MB gzip): "
        f"{events:,} events in {report.seconds:.0f} s = {events / report.seconds:,.0f} events/s; "
        f"peak RSS {memory.peak_mb:,.0f} MB; store {stored / 2**20:,.0f} MB "
        f"({stored / evidence.stat().st_size:.2f}x the gzip)"
    )
    shutil.rmtree(store, ignore_errors=True)


def day_query(store: Path) -> None:
    started = time.perf_counter()
    case = kf.open(store)
    opened = time.perf_counter() - started
    days = case.store.days()
    day = days[len(days) // 2]
    end = (pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=1)).isoformat()
    one = case.between(day, end)
    actions = one.activity.groupby("action", observed=True).size()
    total = time.perf_counter() - started
    print(
        f"open + one-day query: {total:.2f} s (open {opened:.2f} s) for {len(one.activity):,} "
        f"events of {day}, {len(actions)} actions"
    )


def on_dask(store: Path, workers: int) -> dict[str, float]:
    from distributed import Client, LocalCluster

    results: dict[str, float] = {}
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        Client(cluster),
        Sampler() as memory,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", kf.DetectionNote)
        case = kf.open(store, engine="dask")
        with timed("graph", results):
            graph = kf.build_graph(case)
        with timed("pack", results):
            findings = kf.detect(case)
    not_run = sum(1 for note in findings.attrs["notes"].values() if "every row" in note)
    print(
        f"dask, {workers} worker(s): graph {results['graph']:.1f} s ({graph.number_of_nodes():,} "
        f"nodes, {graph.number_of_edges():,} edges); pack {results['pack']:.1f} s "
        f"({len(findings)} findings, {not_run} rules left to pandas); driver peak "
        f"{memory.peak_mb:,.0f} MB"
    )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--kms-per-hour", type=float, default=25400.0)
    parser.add_argument("--reuse-store", action="store_true", help="skip the ingest")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--big-file", type=float, help="measure one JSON-lines file of GB")
    args = parser.parse_args(argv)
    if args.big_file:
        ingest_big_file(args.big_file)
        return
    folder = case_folder(args.hours, args.kms_per_hour)
    evidence = folder / "evidence"
    store = folder.parent / f"store-{args.hours}h-{int(args.kms_per_hour)}"
    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} cores, kmsforensics "
          f"{kf.__version__}")  # fmt: skip
    if not (args.reuse_store and kf.store.is_store(store)):
        ingest(evidence, store)
    gz = size_of(evidence, "*.gz")
    stored = size_of(store)
    print(f"store: {stored / 2**20:,.0f} MB on disk vs {gz / 2**20:,.0f} MB of gzip evidence "
          f"({stored / gz:.2f}x)")  # fmt: skip
    day_query(store)
    timings: dict[int, dict[str, float]] = {}
    for workers in args.workers:  # --workers 0: the store only, no dask
        if workers:
            timings[workers] = on_dask(store, workers)
    if 1 in timings and 2 in timings:
        speed: Callable[[str], float] = lambda k: timings[1][k] / timings[2][k]  # noqa: E731
        print(f"speed-up with 2 workers: graph {speed('graph'):.2f}x, pack {speed('pack'):.2f}x")


if __name__ == "__main__":
    main()
