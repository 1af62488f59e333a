"""Write events in every delivery shape the loader reads, byte-for-byte reproducibly.

Writers take iterables of event dicts (ActionTrail events or KMS access-log records),
stream them to disk in bounded memory, and return what they wrote (paths and counts)
so that a generator can record its ground truth. Gzip files carry no timestamp and
JSON is written with fixed separators, so the same events give identical bytes.

Examples
--------
>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> event = {"eventId": "e-1", "eventTime": "2026-03-02T01:00:00Z", "eventName": "ListKeys",
...          "acsRegion": "cn-hangzhou", "recipientAccountId": "1754986938261234"}
>>> written = write_oss_tree([event], root / "bucket")
>>> written.records, written.paths[0].name.startswith("Actiontrail_cn-hangzhou_2026030201")
(1, True)
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby, islice
from pathlib import Path
from typing import IO, Any, cast

#: Events per OSS delivery file (ActionTrail aggregates about every 5 minutes).
OSS_EVENTS_PER_FILE = 1000
#: Events per LookupEvents page (the API returns at most 50).
LOOKUP_PAGE_SIZE = 50
SLS_TOPICS = ("actiontrail_audit_event", "actiontrail_event")


@dataclass
class Written:
    """What a writer wrote: files, records, and the records it damaged on purpose."""

    paths: list[Path] = field(default_factory=list)
    records: int = 0
    damaged: list[tuple[Path, int]] = field(default_factory=list)

    def add(self, other: Written) -> None:
        """Fold another writer's result into this one."""
        self.paths.extend(other.paths)
        self.records += other.records
        self.damaged.extend(other.damaged)


def dumps(record: Any) -> str:
    """Serialise one record the way the vendor's pipelines do: compact, UTF-8 kept."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


# --- ActionTrail ------------------------------------------------------------------------


def write_oss_tree(
    events: Iterable[dict[str, Any]],
    bucket: Path,
    *,
    prefix: str = "",
    rd_id: str | None = None,
    per_file: int = OSS_EVENTS_PER_FILE,
) -> Written:
    """Deliver events as ActionTrail does to OSS: gz JSON arrays in dated folders.

    Layout (log-formats.md §2.1): ``<bucket>/<prefix>/AliyunLogs/Actiontrail/<region>/
    <YYYY>/<MM>/<DD>/Actiontrail_<region>_<YYYYMMDDHHMMSS>_1002_<count>_<size>_<md5>.gz``;
    with ``rd_id`` (a multi-account trail) ``<rd_id>/<accountId>/`` comes before the
    region. Events must arrive in time order; a file never spans two UTC days.
    """
    written = Written()
    base = (
        bucket / prefix / "AliyunLogs" / "Actiontrail"
        if prefix
        else (bucket / "AliyunLogs" / "Actiontrail")
    )

    def place(event: dict[str, Any]) -> tuple[str, str, str]:
        account = str(event.get("recipientAccountId") or "")
        return (
            account if rd_id else "",
            str(event.get("acsRegion") or "cn-hangzhou"),
            str(event["eventTime"])[:10],
        )

    for (account, region, day), group in groupby(events, key=place):
        for chunk in _chunks(group, per_file):
            body = gzip.compress(("[" + ",".join(dumps(e) for e in chunk) + "]").encode(), mtime=0)
            stamp = _compact_time(str(chunk[-1]["eventTime"]))
            digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
            folder = base / (f"{rd_id}/{account}" if rd_id else "") / region / day.replace("-", "/")
            name = f"Actiontrail_{region}_{stamp}_1002_{len(chunk)}_{len(body)}_{digest}.gz"
            written.paths.append(_write(folder / name, body))
            written.records += len(chunk)
    return written


def write_lookup_pages(
    events: Iterable[dict[str, Any]], folder: Path, page_size: int = LOOKUP_PAGE_SIZE
) -> Written:
    """Save events as LookupEvents API responses, one page per file (``page-0001.json``)."""
    written = Written()
    for number, chunk in enumerate(_chunks(events, page_size), start=1):
        token = hashlib.sha256(str(number).encode()).hexdigest()[:24]
        page = {
            "RequestId": f"{number:08d}-0000-4000-8000-000000000000",
            "StartTime": str(chunk[0]["eventTime"]),
            "EndTime": str(chunk[-1]["eventTime"]),
            "NextToken": token,
            "Events": chunk,
        }
        text = json.dumps(page, ensure_ascii=False, indent=2)
        written.paths.append(_write(folder / f"page-{number:04d}.json", text.encode()))
        written.records += len(chunk)
    return written


def sls_envelope(event: dict[str, Any], topic: str = SLS_TOPICS[0]) -> dict[str, Any]:
    """Wrap an event as an SLS log: ``event`` as a JSON string, plus the system fields."""
    stamp = str(event.get("eventTime", ""))
    seconds = int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) if stamp else 0
    record: dict[str, Any] = {
        "__topic__": topic,
        "__time__": str(seconds),
        "__source__": "actiontrail",
        "__tag__:__receive_time__": str(seconds + 3),
        "event": dumps(event),
    }
    if topic == "actiontrail_event":
        record["owner_id"] = str(event.get("recipientAccountId") or "")
    return record


def write_sls_jsonl(
    events: Iterable[dict[str, Any]],
    path: Path,
    topic: str = SLS_TOPICS[0],
    damage: float = 0.0,
    seed: int = 0,
) -> Written:
    """Write an SLS export (``pull_log_dump``, or shipping to OSS): one SLS log per line."""
    return write_jsonl((sls_envelope(e, topic) for e in events), path, damage=damage, seed=seed)


def write_sls_csv(
    events: Iterable[dict[str, Any]],
    path: Path,
    delimiter: str = ",",
    flattened: bool = False,
) -> Written:
    """Write an SLS CSV download: the ``event`` JSON string, or ``event.`` columns."""
    rows = (flatten_event(e) if flattened else sls_envelope(e) for e in events)
    return write_csv(rows, path, delimiter=delimiter)


def flatten_event(event: dict[str, Any]) -> dict[str, str]:
    """SLS JSON-index columns: ``event.userIdentity.accessKeyId`` and the like."""
    out: dict[str, str] = {"__topic__": SLS_TOPICS[0]}
    for key, value in event.items():
        if key == "userIdentity" and isinstance(value, dict):
            for sub, inner in value.items():
                out[f"event.userIdentity.{sub}"] = (
                    dumps(inner) if isinstance(inner, dict) else _text(inner)
                )
        else:
            out[f"event.{key}"] = dumps(value) if isinstance(value, (dict, list)) else _text(value)
    return out


# --- generic: JSON lines, CSV --------------------------------------------------------------


def write_jsonl(
    records: Iterable[dict[str, Any]],
    path: Path,
    *,
    gz: bool = False,
    damage: float = 0.0,
    seed: int = 0,
) -> Written:
    """One record per line; ``damage`` is the fraction of lines cut in half on purpose.

    A damaged line is truncated mid-record (as a broken transfer leaves it), so the
    loader must report it; its 1-based line number is returned in ``damaged``.
    """
    rng = random.Random(seed)
    written = Written(paths=[path])
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, gz) as out:
        for line_number, record in enumerate(records, start=1):
            text = dumps(record)
            if damage and rng.random() < damage:
                text = text[: len(text) // 2]
                written.damaged.append((path, line_number))
            out.write(text.encode() + b"\n")
            written.records += 1
    return written


def write_json_array(records: Iterable[dict[str, Any]], path: Path, gz: bool = False) -> Written:
    """All records in one JSON array."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = Written(paths=[path])
    with _open(path, gz) as out:
        out.write(b"[")
        for index, record in enumerate(records):
            out.write((b"," if index else b"") + dumps(record).encode())
            written.records += 1
        out.write(b"]")
    return written


def write_csv(
    records: Iterable[dict[str, Any]], path: Path, delimiter: str = ",", gz: bool = False
) -> Written:
    """CSV with a header row; the columns are those of the first record, then any new ones.

    Records are buffered to learn every column (CSV needs its header first); use JSON
    lines for very large outputs.
    """
    rows = [{k: _text(v) for k, v in r.items()} for r in records]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    text = io.StringIO()
    writer = csv.DictWriter(text, list(columns), delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, gz) as out:
        out.write(text.getvalue().encode())
    return Written(paths=[path], records=len(rows))


# --- KMS instance access logs ---------------------------------------------------------------


def write_kms_sls(records: Iterable[dict[str, Any]], path: Path, gz: bool = True) -> Written:
    """Write KMS records as an SLS export, with ``__time__``, ``__topic__``, ``__source__``."""

    def envelope(record: dict[str, Any]) -> dict[str, Any]:
        stamp = str(record.get("time", ""))
        seconds = int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        return {
            **record,
            "__time__": seconds,
            "__topic__": "",
            "__source__": str(record.get("client_ip") or ""),
        }

    return write_jsonl((envelope(r) for r in records), path, gz=gz)


# --- helpers ------------------------------------------------------------------------------


def _chunks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _compact_time(stamp: str) -> str:
    return stamp.replace("-", "").replace("T", "").replace(":", "").replace("Z", "")[:14]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _open(path: Path, gz: bool) -> IO[bytes]:
    if gz:
        return cast(IO[bytes], gzip.GzipFile(path, "wb", mtime=0))  # reproducible bytes
    return open(path, "wb")
