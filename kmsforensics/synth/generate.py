"""Generate a case's evidence on disk: the organisation's normal activity, streamed.

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
>>> summary["actiontrail_events"] > 0 and summary["kms_records"] > 0
True
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from .org import Organisation, build_organisation
from .traffic import Record, Traffic, normal_traffic
from .writers import write_jsonl, write_oss_tree

DEFAULT_START = datetime(2026, 3, 2, tzinfo=UTC)


def generate(
    out: Path,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    hours: int = 24 * 7,
    kms_per_hour: float = 600.0,
    organisation: Organisation | None = None,
) -> dict[str, Any]:
    """Write ``hours`` of normal activity under ``out``; return what was written."""
    org = organisation or build_organisation(seed)
    traffic = Traffic(start, hours=hours, kms_per_hour=kms_per_hour)
    counts = {"actiontrail_events": 0, "kms_records": 0, "files": 0}
    accounts = {a.uid: a.name for a in org.accounts}
    for hour, records in groupby(normal_traffic(org, traffic, seed), key=_hour_of):
        batch = list(records)
        events = [r for source, r in batch if source == "actiontrail"]
        events.sort(key=lambda e: (str(e.get("recipientAccountId")), e["eventTime"]))
        written = write_oss_tree(events, out / "oss" / "acme-trail-logs", rd_id=org.rd_id)
        counts["actiontrail_events"] += written.records
        counts["files"] += len(written.paths)
        kms = [r for source, r in batch if source == "kms"]
        kms.sort(key=lambda r: str(r["account_id"]))
        for account, rows in groupby(kms, key=lambda r: str(r["account_id"])):
            name = f"kms_audit_log_{hour.replace('-', '').replace('T', '_')}.json.gz"
            path = out / "sls" / f"kms-log-{accounts.get(account, account)}" / hour[:10] / name
            written = write_jsonl(rows, path, gz=True)
            counts["kms_records"] += written.records
            counts["files"] += 1
    return {"seed": seed, "start": start.isoformat(), "hours": hours, **counts}


def _hour_of(record: Record) -> str:
    source, body = record
    stamp = str(body["eventTime"] if source == "actiontrail" else body["time"])
    return stamp[:13]
