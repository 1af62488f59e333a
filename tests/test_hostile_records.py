"""Hostile records: each one is loaded or reported, never hidden, never fatal.

The events here are written by hand, unlike the project's generator: an OSS-style
ActionTrail event with keys in an unusual order, a console user, odd values.
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import kmsforensics as kf


def event(n: int, **overrides: Any) -> dict[str, Any]:
    """A console user's GetSecretValue, keys deliberately out of the usual order."""
    base: dict[str, Any] = {
        "userAgent": "Mozilla/5.0 (console)",
        "sourceIpAddress": f"198.51.100.{n}",
        "eventName": "GetSecretValue",
        "eventSource": "kms.cn-shanghai.aliyuncs.com",
        "requestParameters": {"SecretName": f"db-pass-{n}", "RegionId": "cn-shanghai"},
        "eventId": f"EV-{n:04d}-hostile",
        "eventTime": f"2026-04-0{1 + n % 9}T23:{n % 60:02d}:07Z",
        "userIdentity": {
            "principalId": "277809171553201",
            "userName": "mallory",
            "type": "ram-user",
            "accountId": "1301234567890123",
        },
        "eventType": "ApiCall",
        "acsRegion": "cn-shanghai",
    }
    base.update(overrides)
    return base


def lines(events: list[dict[str, Any]], end: bytes = b"\n") -> bytes:
    return b"".join(json.dumps(e).encode() + end for e in events)


def load(folder: Path, **kwargs: Any) -> kf.Case:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        return kf.load(folder, progress=False, **kwargs)


def manifest_row(case: kf.Case) -> dict[str, Any]:
    assert len(case.manifest) == 1
    return dict(case.manifest.iloc[0])


def rows(case: kf.Case, severity: str) -> list[tuple[int | None, str | None, str]]:
    found = case.issues[case.issues.severity == severity]
    return [
        (None if pd.isna(r) else int(r), None if pd.isna(f) else f, why)
        for r, f, why in zip(found.source_record, found.field, found.reason, strict=True)
    ]


def test_a_raw_nul_in_the_first_record_rejects_that_record_only(tmp_path: Path) -> None:
    body = lines([event(0)]).replace(b"mallory", b"mal\x00lory") + lines([event(1), event(2)])
    (tmp_path / "nul.jsonl").write_bytes(body)
    case = load(tmp_path)
    row = manifest_row(case)
    assert (row["records_read"], row["records_loaded"], row["records_rejected"]) == (3, 2, 1)
    assert rows(case, "record") == [
        (1, None, "raw NUL byte in the record (JSON text cannot hold one); record not loaded")
    ]
    assert case.actiontrail.eventId.tolist() == ["EV-0001-hostile", "EV-0002-hostile"]
    with pytest.raises(kf.LogParseError, match=r"nul\.jsonl, record 1: raw NUL"):
        load(tmp_path, strict=True)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_read(tmp_path: Path, encoding: str) -> None:
    text = lines([event(3), event(4)]).decode()
    data = ("\ufeff" + text).encode(encoding) if encoding.endswith("-be") else text.encode(encoding)
    (tmp_path / "export.json").write_bytes(data)
    case = load(tmp_path)
    assert manifest_row(case)["records_loaded"] == 2
    assert case.actiontrail["userIdentity.userName"].tolist() == ["mallory", "mallory"]
    assert "(with a BOM) read as UTF-8" in rows(case, "note")[0][2]


def test_utf16_json_array_is_read_by_the_exact_reader(tmp_path: Path) -> None:
    (tmp_path / "trail.json").write_bytes(json.dumps([event(5), event(6)]).encode("utf-16"))
    case = load(tmp_path)
    assert case.actiontrail.eventId.tolist() == ["EV-0005-hostile", "EV-0006-hostile"]


def test_lone_cr_json_lines_are_split_on_the_cr(tmp_path: Path) -> None:
    (tmp_path / "mac.jsonl").write_bytes(lines([event(i) for i in range(6)], b"\r"))
    case = load(tmp_path)
    row = manifest_row(case)
    assert (row["records_read"], row["records_loaded"], row["records_rejected"]) == (6, 6, 0)
    assert case.actiontrail.source_record.tolist() == [1, 2, 3, 4, 5, 6]


def test_mixed_line_endings_each_end_a_line(tmp_path: Path) -> None:
    body = lines([event(0)], b"\r") + lines([event(1)], b"\r\n") + lines([event(2)], b"\n")
    (tmp_path / "mixed.jsonl").write_bytes(body)
    case = load(tmp_path)
    assert case.actiontrail.source_record.tolist() == [1, 2, 3]


def test_lone_cr_csv_is_read(tmp_path: Path) -> None:
    body = (
        b"eventName,eventTime,eventId,sourceIpAddress\r"
        b"Decrypt,2026-04-01T00:00:01Z,csv-1,192.0.2.1\r"
        b"Encrypt,2026-04-01T00:00:02Z,csv-2,192.0.2.2\r"
    )
    (tmp_path / "sls.csv").write_bytes(body)
    case = load(tmp_path)
    row = manifest_row(case)
    assert (row["records_read"], row["records_loaded"]) == (2, 2)
    assert case.actiontrail.eventName.tolist() == ["Decrypt", "Encrypt"]
    assert case.actiontrail.source_record.tolist() == [2, 3]


def test_same_id_time_and_name_but_different_content_keeps_both(tmp_path: Path) -> None:
    first = event(7)
    second = event(7, sourceIpAddress="203.0.113.66", errorCode="Forbidden.RAM")
    (tmp_path / "a.jsonl").write_bytes(lines([first, first, second]))
    case = load(tmp_path)
    row = manifest_row(case)
    assert (row["records_loaded"], row["duplicates"]) == (2, 1)
    assert sorted(case.actiontrail.sourceIpAddress) == ["198.51.100.7", "203.0.113.66"]
    notes = rows(case, "note")
    assert len(notes) == 1 and notes[0][0] == 3 and notes[0][1] == "eventId"
    assert "different content (errorCode, sourceIpAddress)" in notes[0][2]


def test_nan_and_infinity_literals_are_field_issues(tmp_path: Path) -> None:
    body = (
        lines([event(1)]).replace(b'"ApiCall"', b"NaN")
        + lines([event(2)]).replace(b'"RegionId": "cn-shanghai"', b'"RegionId": -Infinity')
        + lines([event(3, userAgent="NaN, Infinity")])  # inside a string: fine
    )
    (tmp_path / "nan.jsonl").write_bytes(body)
    case = load(tmp_path)
    assert manifest_row(case)["records_loaded"] == 3
    assert rows(case, "field") == [
        (1, "eventType", "non-standard JSON literal NaN kept as the text 'NaN'"),
        (
            2,
            "requestParameters.RegionId",
            "non-standard JSON literal -Infinity kept as the text '-Infinity'",
        ),
    ]
    assert case.actiontrail.eventType.tolist()[0] == "NaN"
    with pytest.raises(kf.LogParseError, match=r"nan\.jsonl, record 1: field 'eventType'"):
        load(tmp_path, strict=True)


def test_duplicate_keys_keep_the_first_value_and_say_so(tmp_path: Path) -> None:
    text = json.dumps(event(4))
    text = text.replace(
        '"sourceIpAddress": "198.51.100.4"',
        '"sourceIpAddress": "198.51.100.4", "sourceIpAddress": "203.0.113.99"',
    )
    text = text.replace('"userName": "mallory"', '"userName": "mallory", "userName": "admin"')
    page = {"RequestId": "x", "Events": [json.loads(json.dumps(event(5)))]}
    page_text = json.dumps(page).replace(
        '"eventType": "ApiCall"', '"eventType": "ApiCall", "eventType": "ConsoleSignin"'
    )
    (tmp_path / "dup.jsonl").write_bytes((text + "\n" + page_text + "\n").encode())
    case = load(tmp_path)
    at = case.actiontrail.set_index("eventId")
    assert at.loc["EV-0004-hostile", "sourceIpAddress"] == "198.51.100.4"
    assert at.loc["EV-0004-hostile", "userIdentity.userName"] == "mallory"
    assert at.loc["EV-0005-hostile", "eventType"] == "ApiCall"
    fields = rows(case, "field")
    assert [(r, f) for r, f, _ in fields] == [
        (1, "sourceIpAddress"),
        (1, "userIdentity.userName"),
        (2, "Events[0].eventType"),
    ]
    assert "the first is kept ('198.51.100.4'), not '203.0.113.99'" in fields[0][2]


def test_impossible_dates_are_rejected_not_rolled_over(tmp_path: Path) -> None:
    evs = [
        event(1, eventTime="2026-02-30T10:00:00Z"),
        event(2, eventTime="2026-04-31T10:00:00.5+08:00"),
        event(3, eventTime="2024-02-29T10:00:00Z"),
    ]
    (tmp_path / "dates.jsonl").write_bytes(lines(evs))
    case = load(tmp_path)
    assert case.actiontrail.eventId.tolist() == ["EV-0003-hostile"]
    assert [r for r, _, _ in rows(case, "record")] == [1, 2]


def test_fractions_of_a_second_are_exact(tmp_path: Path) -> None:
    evs = [
        event(1, eventTime="2026-03-01T10:00:00.250Z"),
        event(2, eventTime="2026-03-01T10:00:00.123456789+00:00"),
    ]
    (tmp_path / "ms.jsonl").write_bytes(lines(evs))
    kms = [
        {"request_id": "r1", "time": "1772359200.25", "api_name": "Decrypt"},
        {"request_id": "r2", "time": "1772359200125", "api_name": "Decrypt"},
    ]
    (tmp_path / "kms.jsonl").write_bytes(lines(kms))
    case = load(tmp_path)
    times = case.actiontrail.eventTime
    assert [t.nanosecond + 1000 * t.microsecond for t in times] == [250_000_000, 123_456_789]
    kms_times = case.kms.time.tolist()
    assert kms_times == [
        pd.Timestamp("2026-03-01T10:00:00.250Z"),
        pd.Timestamp("2026-03-01T10:00:00.125Z"),
    ]


def test_a_time_past_2262_is_an_issue_row_not_a_crash(tmp_path: Path) -> None:
    evs = [event(1, eventTime="9999-12-31T23:59:59Z"), event(2)]
    (tmp_path / "far.jsonl").write_bytes(lines(evs))
    case = load(tmp_path)
    assert case.actiontrail.eventId.tolist() == ["EV-0002-hostile"]
    assert rows(case, "record")[0][:2] == (1, "eventTime")
    with pytest.raises(kf.LogParseError, match=r"far\.jsonl, record 1"):
        load(tmp_path, strict=True)


def test_the_gzip_damage_note_is_true_about_what_was_read(tmp_path: Path) -> None:
    whole = gzip.compress(lines([event(i) for i in range(30)]), mtime=0)
    (tmp_path / "tail.jsonl.gz").write_bytes(whole + b"\x1f\x8b garbage")
    case = load(tmp_path)
    assert manifest_row(case)["records_loaded"] == 30
    note = rows(case, "note")[0][2]
    assert "cannot be read" not in note and "everything before them was read" in note
    (tmp_path / "tail.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    note = rows(load(tmp_path), "note")[0][2]
    assert "before the cut were read, the rest is lost" in note


def test_strict_stops_at_the_first_problem_in_file_order(tmp_path: Path) -> None:
    """A strict load reads files in batches, yet raises what a file-by-file read would."""
    (tmp_path / "a.jsonl").write_bytes(lines([event(1), event(2)]))
    # b: the second record is not a log record (found by the extractor, late)
    (tmp_path / "b.jsonl").write_bytes(lines([event(3), {"colour": "blue"}]))
    # c: a raw NUL in the first record (found while splitting the file, early)
    (tmp_path / "c.jsonl").write_bytes(b'{"a": "\x00"}\n' + lines([event(4)]))
    with pytest.raises(kf.LogParseError, match=r"b\.jsonl, record 2: neither") as err:
        load(tmp_path, strict=True)
    assert err.value.record == 2
    (tmp_path / "b.jsonl").unlink()
    with pytest.raises(kf.LogParseError, match=r"c\.jsonl, record 1: raw NUL"):
        load(tmp_path, strict=True)
    (tmp_path / "c.jsonl").unlink()
    assert len(load(tmp_path, strict=True).actiontrail) == 2
