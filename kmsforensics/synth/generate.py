"""Generate a case's evidence on disk: normal activity and attacks, with ground truth.

ActionTrail events go to an OSS delivery tree (multi-account trail layout, gz JSON
arrays) and KMS access-log records to hourly gz JSON-lines files per account, the
way SLS ships logs to OSS. Writing is hour by hour, so memory stays flat whatever
the volume; the same seed gives byte-identical files.

Examples
--------
>>> import tempfile, pathlib
>>> from datetime import datetime, timezone
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> summary = generate(out, seed=3, start=datetime(2026, 3, 2, tzinfo=timezone.utc),
...                    hours=2, kms_per_hour=40)
>>> summary["counts"]["actiontrail_events"] > 0 and summary["counts"]["kms_records"] > 0
True
>>> (out / "truth.json").exists()
True
"""

from __future__ import annotations

import heapq
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from .._version import __version__
from .org import Organisation, build_organisation
from .scenarios import SCENARIOS
from .traffic import Effects, Traffic, World, iso, normal_traffic
from .writers import write_jsonl, write_oss_tree

DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)


def generate(
    out: Path,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    hours: int = 24 * 7,
    kms_per_hour: float = 600.0,
    scenarios: Sequence[tuple[str, datetime]] = (),
    organisation: Organisation | None = None,
) -> dict[str, Any]:
    """Write ``hours`` of activity to ``out/evidence``, with attacks, and ``out/truth.json``.

    ``scenarios`` are ``(scenario id, UTC start)`` pairs from
    :data:`~kmsforensics.synth.scenarios.SCENARIOS`. Returns the truth that is written.
    """
    org = organisation or build_organisation(seed)
    traffic = Traffic(start, hours=hours, kms_per_hour=kms_per_hour)
    effects = Effects()
    attack_world = World(org, traffic, random.Random(seed + 7919), effects, background_errors=False)
    attacks = [SCENARIOS[name](attack_world, at) for name, at in scenarios]
    attack_records = heapq.merge(*(a.records() for a in attacks), key=lambda item: item[0])
    normal = (
        (_time_of(source, record), source, record)
        for source, record in normal_traffic(org, traffic, seed, effects)
        if not (source == "actiontrail" and effects.silent(record, _time_of(source, record)))
    )
    counts = {"actiontrail_events": 0, "kms_records": 0, "files": 0, "rejected_disabled": 0}
    evidence = out / "evidence"
    accounts = {a.uid: a.name for a in org.accounts}
    merged = heapq.merge(normal, attack_records, key=lambda item: item[0])
    for hour, items in groupby(merged, key=lambda item: iso(item[0])[:13]):
        batch = list(items)
        events = [r for _, source, r in batch if source == "actiontrail"]
        events.sort(key=lambda e: (str(e.get("recipientAccountId")), e["eventTime"]))
        written = write_oss_tree(events, evidence / "oss" / "acme-trail-logs", rd_id=org.rd_id)
        counts["actiontrail_events"] += written.records
        counts["files"] += len(written.paths)
        kms = [r for _, source, r in batch if source == "kms"]
        counts["rejected_disabled"] += sum(
            "Rejected.Disabled" in str(r.get("error_message")) for r in kms
        )
        kms.sort(key=lambda r: str(r["account_id"]))
        for account, rows in groupby(kms, key=lambda r: str(r["account_id"])):
            name = f"kms_audit_log_{hour.replace('-', '').replace('T', '_')}.json.gz"
            owner = accounts.get(account, account or "unknown-account")
            path = evidence / "sls" / f"kms-log-{owner}" / hour[:10] / name
            written = write_jsonl(rows, path, gz=True)
            counts["kms_records"] += written.records
            counts["files"] += 1
    truth = {
        "generator": f"kmsforensics {__version__}",
        "seed": seed,
        "start": iso(start),
        "hours": hours,
        "kms_per_hour": kms_per_hour,
        "organisation": {"rd_id": org.rd_id, "accounts": {a.purpose: a.uid for a in org.accounts}},
        "counts": counts,
        "scenarios": [a.truth() for a in attacks],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def _time_of(source: str, record: dict[str, Any]) -> datetime:
    stamp = str(record["eventTime"] if source == "actiontrail" else record["time"])
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
