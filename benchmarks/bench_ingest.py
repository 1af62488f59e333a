"""Benchmark ``kf.ingest`` on wild-shaped evidence: events/s, peak memory, store size.

For each evidence set (made by ``benchmarks/wild_evidence.py``: ActionTrail as gz JSON
arrays of 1,000 events, KMS as ONE gz JSON-lines file), in a fresh process each:

* ``kf.load`` of the same files (the loader's share of an ingest's time);
* ``kf.ingest`` into a new store: events/s, peak RSS (sampled every 0.1 s), the store's
  bytes on disk against the gzip evidence, and the bytes per frame;
* with ``--both``, the two sets ingested one after the other into one store (the second
  is fused with the first), and the time of that second ingest.

The evidence is read in place and never modified; stores go to ``--out`` (removed).

Usage: ``python benchmarks/bench_ingest.py AT_DIR KMS_DIR [--out DIR] [--both] [--no-load]
[--sets actiontrail,kms]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: One measurement, run in its own process so that peak memory is its own.
_CHILD = r"""
import json, os, sys, threading, time, warnings
from pathlib import Path
import psutil
import kmsforensics as kf

mode, store, evidence = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
samples, stop = [], threading.Event()
def sample():
    me = psutil.Process()
    while not stop.is_set():
        samples.append(me.memory_info().rss)
        time.sleep(0.1)
thread = threading.Thread(target=sample, daemon=True)
thread.start()
warnings.simplefilter("ignore")
started, cpu = time.perf_counter(), time.process_time()
if mode == "load":
    events = len(kf.load(*evidence, progress=False).activity)
else:
    report = kf.ingest(*evidence, out=store, progress=False)
    events = report.events_added["activity"]
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
stop.set()
thread.join()
load = os.getloadavg()[0]
print(json.dumps({"events": events, "seconds": seconds, "cpu": cpu, "peak_mb": max(samples) / 2**20,
                  "load": load}))
"""


def run(mode: str, store: Path, evidence: list[Path]) -> dict[str, float]:
    """Run one load or ingest in a fresh Python; return its figures."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(store), *map(str, evidence)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def size_of(folder: Path, pattern: str = "*") -> int:
    return sum(p.stat().st_size for p in folder.rglob(pattern) if p.is_file())


def by_frame(store: Path) -> str:
    sizes = {p.name: size_of(p) for p in store.iterdir() if p.is_dir()}
    return ", ".join(f"{k} {v / 2**20:,.1f}" for k, v in sorted(sizes.items(), key=lambda x: -x[1]))


def measure(label: str, evidence: Path, out: Path, with_load: bool = True) -> None:
    gz = size_of(evidence, "*.gz")
    load = run("load", out / "unused", [evidence]) if with_load else None
    store = out / f"store-{label}"
    shutil.rmtree(store, ignore_errors=True)
    ingest = run("ingest", store, [evidence])
    stored = size_of(store)
    rate = ingest["events"] / ingest["seconds"]
    loaded = (
        ""
        if load is None
        else f"; kf.load of the same files {load['seconds']:.1f} s "
        f"({load['events'] / load['seconds']:,.0f} events/s, CPU {load['cpu']:.1f} s, peak "
        f"{load['peak_mb']:,.0f} MB, load average {load['load']:.1f}) = "
        f"{load['seconds'] / ingest['seconds']:.0%} of the ingest"
    )
    print(
        f"{label}: {ingest['events']:,.0f} events; ingest {ingest['seconds']:.1f} s = "
        f"{rate:,.0f} events/s (CPU {ingest['cpu']:.1f} s), peak RSS {ingest['peak_mb']:,.0f} MB, "
        f"load average {ingest['load']:.1f}{loaded}"
    )
    print(
        f"  store {stored / 2**20:,.1f} MB vs {gz / 2**20:,.1f} MB of gzip evidence "
        f"({stored / gz:.2f}x); MB per folder: {by_frame(store)}"
    )
    shutil.rmtree(store, ignore_errors=True)


def both(at: Path, kms: Path, out: Path) -> None:
    store = out / "store-both"
    shutil.rmtree(store, ignore_errors=True)
    first = run("ingest", store, [at])
    second = run("ingest", store, [kms])
    gz = size_of(at, "*.gz") + size_of(kms, "*.gz")
    stored = size_of(store)
    print(
        f"both, one store: ActionTrail {first['seconds']:.1f} s, then KMS (fused with it) "
        f"{second['seconds']:.1f} s = {second['events'] / second['seconds']:,.0f} events/s "
        f"(CPU {second['cpu']:.1f} s), peak {second['peak_mb']:,.0f} MB, load average "
        f"{second['load']:.1f}; store {stored / gz:.2f}x the gzip"
    )
    shutil.rmtree(store, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("actiontrail", type=Path, help="folder of gz JSON arrays")
    parser.add_argument("kms", type=Path, help="folder (or file) of one gz JSON-lines log")
    parser.add_argument("--out", type=Path, help="where the stores go (default: a temp dir)")
    parser.add_argument("--both", action="store_true", help="also both sets in one store")
    parser.add_argument("--no-load", action="store_true", help="skip the kf.load runs")
    parser.add_argument(
        "--sets", default="actiontrail,kms", help="which sets to ingest alone (comma-separated)"
    )
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    out.mkdir(parents=True, exist_ok=True)
    import psutil

    import kmsforensics as kf

    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} cores, kmsforensics "
          f"{kf.__version__}")  # fmt: skip
    sets = args.sets.split(",")
    if "actiontrail" in sets:
        measure("ActionTrail", args.actiontrail, out, not args.no_load)
    if "kms" in sets:
        measure("KMS", args.kms, out, not args.no_load)
    if args.both:
        both(args.actiontrail, args.kms, out)


if __name__ == "__main__":
    main()
