"""Does the load time grow with the number of distinct values? (issue 12 §3)

Writes two single-file gz JSON-lines KMS logs of N records each (from
:mod:`wild_evidence`), alike in every byte count: in one, the source address,
the STS key, the gateway address and the key (with its ARN and parameters) are
new in nearly every record, as in the wild; in the other they come from pools of
50 values. Each is loaded by ``kf.load`` in a fresh process, ``--repeat`` times,
and the script prints the CPU time (``time.process_time``, which a busy machine
disturbs less than the wall clock), the wall clock and the load average.

Usage: ``python benchmarks/bench_distinct.py [--events 300000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from isal import igzip

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from wild_evidence import Wild  # noqa: E402

POOL = 50
FRESH = ("client_ip", "__source__", "access_key_id", "resource_id", "resource_parameters")


def generate(folder: Path, n: int) -> dict[str, Path]:
    """Write (once) the two logs; return them by name."""
    files = {
        "many distinct": folder / "many" / "kms.json.gz",
        "few distinct": folder / "few" / "kms.json.gz",
    }
    marker = folder / f".done-distinct-v1-{n}"
    if marker.exists():
        return files
    wild = Wild(11, n)
    pools = {name: [wild.kms_record(i)[name] for i in range(POOL)] for name in FRESH}
    rng = random.Random(5)
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    with (
        igzip.open(files["many distinct"], "wb", 3) as many,
        igzip.open(files["few distinct"], "wb", 3) as few,
    ):
        for i in range(n):
            record = wild.kms_record(i)
            many.write(json.dumps(record).encode() + b"\n")
            pick = rng.randrange(POOL)  # key, its ARN and parameters stay together
            record.update({name: pools[name][pick] for name in FRESH})
            few.write(json.dumps(record).encode() + b"\n")
    marker.touch()
    return files


CHILD = """
import sys, time, os
import kmsforensics as kf
before = os.getloadavg()[0]
c0, t0 = time.process_time(), time.perf_counter()
case = kf.load(sys.argv[1], progress=False)
print(time.process_time() - c0, time.perf_counter() - t0, len(case.activity), before)
"""


def measure(path: Path) -> tuple[float, float, int, float]:
    """Load ``path`` in a fresh process; return CPU s, wall s, rows, load average."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], check=True,
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1]), int(out[2]), float(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data" / "distinct")
    args = parser.parse_args()
    files = generate(args.data, args.events)
    medians = {}
    for label, path in files.items():
        runs = [measure(path) for _ in range(args.repeat)]
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        medians[label] = cpu
        print(
            f"{label:14} {path.stat().st_size / 1e6:6.1f} MB gz  rows {runs[0][2]:,}  "
            f"CPU {cpu:6.2f} s  wall {wall:6.2f} s  (runs CPU {[round(r[0], 2) for r in runs]}, "
            f"load average {[round(r[3], 1) for r in runs]})"
        )
    ratio = medians["many distinct"] / medians["few distinct"]
    print(f"CPU time, many distinct values / few: {ratio:.2f}x ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
