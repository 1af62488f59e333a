"""Benchmark fusing the two logs: call_id pairing and name filling on activity rows.

Builds activity tables directly (half KMS-log rows of RAM roles without names, half
ActionTrail rows of the KMS service that name them), once with no request id shared
and once with every KMS row paired with its ActionTrail event, and prints the seconds
:func:`kmsforensics.normalize.fusion.fuse` takes on each.

Usage: ``python benchmarks/bench_fusion.py [--rows 1000000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from kmsforensics.normalize.fusion import fuse
from kmsforensics.schema import ACTIVITY_COLUMNS


def _part(source: str, n: int, paired: bool) -> pa.Table:
    start = pd.Timestamp("2026-03-01", tz="UTC").value
    columns: dict[str, pa.Array] = {c: pa.nulls(n, pa.string()) for c in ACTIVITY_COLUMNS}
    requests = [f"{i:08x}-1111-4222-8333-{'paired' if paired else source}" for i in range(n)]

    def encoded(values: list[str]) -> pa.Array:
        return pa.array(values).dictionary_encode()

    columns.update(
        {
            "time": pa.array(start + np.arange(n) * 10**9, pa.timestamp("ns", tz="UTC")),
            "source": encoded([source] * n),
            "service": encoded(["kms"] * n),
            "request_id": pa.array(requests),
            "event_id": pa.array([f"EV-{i}" for i in range(n)])
            if source == "actiontrail"
            else pa.nulls(n, pa.string()),
            "action": encoded(["GetSecretValue"] * n),
            "secret_name": encoded([f"app/secret-{i % 50}" for i in range(n)]),
            "resource_id": encoded([f"app/secret-{i % 50}" for i in range(n)]),
            "access_key_id": encoded([f"STS.key{i % 5000}" for i in range(n)]),
            "identity_type": encoded(["ram-role"] * n),
            "principal_id": encoded([f"3765123409876{i % 40:05d}" for i in range(n)]),
            "principal_name": encoded([f"role-{i % 40}" for i in range(n)])
            if source == "actiontrail"
            else pa.nulls(n, pa.string()).dictionary_encode(),
            "source_file": encoded([f"{source}.log"] * n),
            "source_record": pa.array(np.arange(n)),
            "call_id": pa.nulls(n, pa.int64()),
            "success": pa.array(np.ones(n, dtype=bool)),
        }
    )
    return pa.table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    half = args.rows // 2
    for paired in (False, True):
        table = pa.concat_tables([_part("kms", half, paired), _part("actiontrail", half, paired)])
        table = table.unify_dictionaries().combine_chunks()
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            fused = fuse(table)
            times.append(time.perf_counter() - started)
        calls = pd.Series(fused.column("call_id").to_numpy()).nunique()
        label = "every KMS row paired" if paired else "no request id shared"
        print(
            f"fuse, {2 * half:,} activity rows, {label}: {calls:,} calls, "
            f"best {min(times):.2f} s, median {float(np.median(times)):.2f} s"
        )


if __name__ == "__main__":
    main()
