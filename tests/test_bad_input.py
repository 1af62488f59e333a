"""Bad input is the normal case: every record is loaded or reported, counts reconcile."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    assert_reconciled,
    at_event,
    csv_bytes,
    dumps,
    jsonl,
    kms_record,
    load_case,
    oss_array,
    sls_record,
    write,
    write_gz,
    zip_bytes,
)

import kmsforensics as kf


def load(*paths: Path, **kwargs: object) -> kf.Case:
    return load_case(*paths, on_warning="ignore", **kwargs)


def issues_of(case: kf.Case, severity: str) -> list[tuple[int | None, str]]:
    rows = case.issues[case.issues.severity == severity]
    return [
        (None if pd.isna(r) else int(r), why)
        for r, why in zip(rows.source_record, rows.reason, strict=True)
    ]


def only_row(case: kf.Case) -> dict[str, object]:
    assert len(case.manifest) == 1
    return case.manifest.iloc[0].to_dict()


def test_truncated_gzip_json_lines(evidence: Path) -> None:
    data = gzip.compress(jsonl([at_event(i) for i in range(40)]), mtime=0)
    write(evidence / "cut.jsonl.gz", data[: int(len(data) * 0.6)])
    case = load(evidence)
    row = only_row(case)
    assert row["status"] == "partial" and 0 < row["records_loaded"] < 40
    assert row["records_rejected"] == 1  # the line cut in half
    notes = issues_of(case, "note")
    assert notes and "truncated gzip stream" in notes[0][1]
    rejected = issues_of(case, "record")
    assert rejected[0][0] == row["records_read"]  # the last line read
    assert_reconciled(case)


def test_truncated_oss_array_keeps_the_elements_before_the_cut(evidence: Path) -> None:
    path = oss_array(evidence / "Actiontrail_cn-hangzhou_1.gz", [at_event(i) for i in range(30)])
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.7)])
    case = load(evidence)
    row = only_row(case)
    assert row["format"] == "json-array:actiontrail"
    assert row["records_loaded"] >= 1 and row["records_rejected"] == 1
    assert "truncated" in issues_of(case, "record")[0][1]
    assert case.actiontrail.source_record.tolist() == list(range(row["records_loaded"]))
    assert_reconciled(case)


def test_damaged_array_element_in_the_middle(evidence: Path) -> None:
    body = dumps([at_event(0), at_event(1), at_event(2)]).decode()
    body = body.replace('"eventName": "DescribeKey"', '"eventName": DescribeKey', 1)
    body = body.replace('"eventName": "DescribeKey"', '"eventName": "ListKeys"', 1)
    write(evidence / "arr.json", body.encode())
    case = load(evidence)
    assert case.actiontrail.source_record.tolist() == [1, 2]
    assert issues_of(case, "record")[0][0] == 0
    assert_reconciled(case)


def test_invalid_utf8_is_replaced_not_dropped(evidence: Path) -> None:
    lines = jsonl([at_event(1), at_event(2, userAgent="evil-UA")]).replace(b"evil", b"ev\xffil")
    write(evidence / "utf.jsonl", lines)
    write(
        evidence / "utf-array.json", dumps([at_event(3, userAgent="zz")]).replace(b"zz", b"z\xfe")
    )
    case = load(evidence)
    assert len(case.actiontrail) == 3
    assert "ev\ufffdil-UA" in case.actiontrail.userAgent.tolist()
    fields = issues_of(case, "field")
    assert (2, "invalid UTF-8 bytes replaced with U+FFFD") in fields
    assert any("invalid UTF-8" in why for _, why in fields if _ is None)  # the array file
    assert_reconciled(case)


def test_bom_and_crlf(evidence: Path) -> None:
    write(evidence / "bom.jsonl", b"\xef\xbb\xbf" + jsonl([at_event(1)]).replace(b"\n", b"\r\n"))
    write(evidence / "bom.json", b"\xef\xbb\xbf" + dumps([at_event(2)]))
    write(evidence / "bom.csv", b"\xef\xbb\xbf" + csv_bytes([kms_record(3)]))
    case = load(evidence)
    assert case.issues.empty
    assert len(case.actiontrail) == 2 and len(case.kms) == 1
    assert case.kms.columns[0] == "time" and "\ufefftime" not in case.kms.columns


def test_a_ten_megabyte_single_line(evidence: Path) -> None:
    huge = "A" * (10 * 1024 * 1024)
    write(evidence / "big.jsonl", jsonl([at_event(1, userAgent=huge), at_event(2)]))
    case = load(evidence)
    assert case.issues.empty
    assert case.actiontrail.userAgent.str.len().max() == len(huge)


def test_deeply_nested_json_loads_and_stays_text(evidence: Path) -> None:
    deep = (
        '{"eventId": "deep", "eventTime": "2026-03-02T01:00:00Z", "requestParameters": '
        + '{"a": ' * 50_000
        + "1"
        + "}" * 50_000
        + "}"
    )
    write(
        evidence / "deep.jsonl", jsonl([at_event(1)]) + deep.encode() + b"\n" + jsonl([at_event(2)])
    )
    case = load(evidence)
    assert case.issues.empty
    at = case.actiontrail.set_index("eventId")
    assert len(at) == 3
    # too deep for any dict: the nested object is kept as its JSON text, not lost
    nested = at.loc["deep", "requestParameters"]
    assert isinstance(nested, str) and nested.startswith('{"a":{"a":')
    assert isinstance(at.iloc[0]["requestParameters"], dict)
    assert_reconciled(case)


def test_duplicate_files_and_overlapping_exports(evidence: Path) -> None:
    events = [at_event(i) for i in range(4)]
    oss_array(evidence / "oss/Actiontrail_a.gz", events)
    oss_array(evidence / "copy/Actiontrail_a.gz", events)
    write(evidence / "sls.json", jsonl([sls_record(events[0]), sls_record(at_event(9))]))
    write(evidence / "kms.jsonl", jsonl([kms_record(1), kms_record(1)]))
    case = load(evidence)
    assert len(case.actiontrail) == 5 and len(case.kms) == 1
    m = case.manifest.set_index(
        case.manifest.path.map(lambda p: Path(p).parent.name + "/" + Path(p).name)
    )
    # discovery order: a folder's files, then its subfolders, each sorted
    assert m.index.tolist()[:2] == ["evidence/kms.jsonl", "evidence/sls.json"]
    assert m.loc["evidence/sls.json", "duplicates"] == 0
    assert m.loc["copy/Actiontrail_a.gz", "duplicates"] == 1  # event 0 came in sls.json
    assert m.loc["oss/Actiontrail_a.gz", "duplicates"] == 4
    assert m.loc["oss/Actiontrail_a.gz", "status"] == "duplicates-only"
    assert m.loc["evidence/kms.jsonl", "duplicates"] == 1
    assert_reconciled(case)


def test_same_id_different_event_is_kept_and_noted(evidence: Path) -> None:
    write(
        evidence / "a.jsonl",
        jsonl([at_event(1), at_event(2, eventId=at_event(1)["eventId"], eventName="DeleteKey")]),
    )
    case = load(evidence)
    assert len(case.actiontrail) == 2
    assert "also used by a different event" in issues_of(case, "note")[0][1]


def test_empty_readme_and_pdf_are_skipped_with_reasons(evidence: Path) -> None:
    write(evidence / "empty.json", b"")
    write(evidence / "README.md", b"# Case 42\nEvidence handed over by the customer.\n")
    write(evidence / "report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    write(evidence / "ok.jsonl", jsonl([at_event(1)]))
    with pytest.warns(kf.ParseWarning, match="3 files skipped") as caught:
        case = kf.load(evidence, progress=False)
    assert len(caught) == 1  # one summary warning per load
    m = case.manifest.set_index(case.manifest.path.map(lambda p: Path(p).name))
    assert m.loc["empty.json", "status"] == "skipped"
    assert "empty file" in m.loc["empty.json", "reason"]
    assert "neither JSON nor a CSV header" in m.loc["README.md", "reason"]
    assert "binary" in m.loc["report.pdf", "reason"]
    assert len(m.loc["README.md", "sha256"]) == 64
    assert len(case.actiontrail) == 1


def test_strict_mode_raises_on_unknown_format_and_bad_records(evidence: Path) -> None:
    write(evidence / "README.md", b"# notes\n")
    with pytest.raises(kf.UnknownFormatError, match=r"README\.md.*json-lines") as info:
        kf.load(evidence, strict=True, progress=False)
    assert isinstance(info.value, ValueError) and "json-array" in info.value.formats_tried
    other = evidence.parent / "other"
    write(
        other / "x.jsonl", jsonl([at_event(1)]) + b'{"eventId": "broken",\n' + jsonl([at_event(2)])
    )
    with pytest.raises(kf.LogParseError) as err:
        kf.load(other, strict=True, progress=False)
    assert err.value.path.endswith("x.jsonl") and err.value.record == 2
    assert isinstance(err.value, kf.KmsForensicsError)


def test_invalid_lines_non_objects_and_unknown_records(evidence: Path) -> None:
    body = (
        jsonl([at_event(1)])
        + b'{"eventId": "x", "eventTime": \n'
        + b"42\n[1, 2]\n"
        + b'"just text"\n{}\n{"hello": "world"}\n'
        + jsonl([at_event(2)])
    )
    write(evidence / "mess.jsonl", body)
    case = load(evidence)
    assert case.actiontrail.source_record.tolist() == [1, 8]
    reasons = dict(issues_of(case, "record"))
    assert reasons[2].startswith("invalid JSON")
    assert reasons[3].startswith("not a JSON object") and reasons[4].startswith("not a JSON")
    assert reasons[6].startswith("empty JSON object")
    assert reasons[7].startswith("neither an ActionTrail event nor a KMS")
    row = only_row(case)
    assert (row["records_read"], row["records_loaded"], row["records_rejected"]) == (8, 2, 6)
    assert case.issues.excerpt[case.issues.source_record == 2].item().startswith('{"eventId"')


def test_records_without_usable_time(evidence: Path) -> None:
    no_time = at_event(1)
    del no_time["eventTime"]
    bad_time = at_event(2, eventTime="yesterday")
    sls = sls_record(at_event(3, eventTime="not a time"))
    write(evidence / "t.jsonl", jsonl([no_time, bad_time, sls, kms_record(4, time="")]))
    case = load(evidence)
    assert len(case.actiontrail) == 1  # the SLS one, by its __time__
    assert str(case.actiontrail.eventTime.item()) == "2026-03-02 01:00:00+00:00"
    rejected = issues_of(case, "record")
    assert [r for r, _ in rejected] == [1, 2, 4]
    assert all("no usable time" in why for _, why in rejected)
    assert "__time__ is used instead" in issues_of(case, "field")[0][1]
    assert_reconciled(case)


def test_bad_optional_fields_keep_the_row(evidence: Path) -> None:
    rows = [kms_record(1, status_code="OK", duration="fast", resource_parameters="{broken")]
    write(evidence / "k.jsonl", jsonl(rows))
    case = load(evidence)
    assert len(case.kms) == 1
    row = case.kms.iloc[0]
    assert row.isna()["status_code"] and row.isna()["duration"]
    fields = sorted(case.issues.field.tolist())
    assert fields == ["duration", "resource_parameters", "status_code"]
    assert (case.issues.severity == "field").all()


def test_csv_with_a_missing_column_and_short_rows(evidence: Path) -> None:
    body = csv_bytes([kms_record(1), kms_record(2)]).decode().splitlines()
    body[2] = ",".join(body[2].split(",")[:5])  # second data row cut short
    write(evidence / "short.csv", ("\r\n".join(body) + "\r\n").encode())
    no_time = [{k: v for k, v in kms_record(3).items() if k != "time"}]
    write(evidence / "notime.csv", csv_bytes(no_time))
    case = load(evidence)
    m = case.manifest.set_index(case.manifest.path.map(lambda p: Path(p).name))
    assert m.loc["short.csv", "records_loaded"] == 1 and m.loc["short.csv", "records_rejected"] == 1
    assert any("row has 5 values but the header has" in w for _, w in issues_of(case, "field"))
    assert m.loc["notime.csv", "status"] == "rejected"
    assert_reconciled(case)


def test_missing_path_names_it() -> None:
    with pytest.raises(FileNotFoundError, match="no/such/evidence"):
        kf.load("no/such/evidence", progress=False)
    with pytest.raises(kf.EvidenceNotFoundError):
        kf.load("no/such/*.gz", progress=False)


def test_zip_member_path_traversal_is_listed_not_read(evidence: Path) -> None:
    write(
        evidence / "evil.zip",
        zip_bytes(
            {
                "../../etc/cron.d/x": jsonl([at_event(1)]),
                "/abs/path.json": jsonl([at_event(2)]),
                "good/kms.jsonl": jsonl([kms_record(1)]),
            }
        ),
    )
    case = load(evidence)
    m = case.manifest
    skipped = m[m.status == "skipped"]
    assert len(skipped) == 2 and skipped.reason.str.contains("path traversal").all()
    assert len(case.kms) == 1 and case.actiontrail.empty
    assert not (evidence.parent.parent / "etc").exists()


def test_decompression_bomb_raises_a_clear_error(evidence: Path) -> None:
    write_gz(evidence / "bomb.json.gz", b"[" + b" " * (20 * 1024 * 1024) + b"]")
    with pytest.raises(kf.DecompressionLimitError, match=r"bomb\.json\.gz.*max_bytes=") as err:
        kf.load(evidence, progress=False, max_bytes=1024 * 1024)
    assert err.value.limit == 1024 * 1024
    write(evidence.parent / "z" / "bomb.zip", zip_bytes({"a.jsonl": b"\n" * (3 * 1024 * 1024)}))
    with pytest.raises(kf.DecompressionLimitError):
        kf.load(evidence.parent / "z", progress=False, max_bytes=1024 * 1024)


def test_corrupt_gzip_data_keeps_what_came_before(evidence: Path) -> None:
    data = bytearray(gzip.compress(jsonl([kms_record(i) for i in range(200)]), mtime=0))
    middle = len(data) // 2
    data[middle : middle + 40] = b"\x00" * 40
    write(evidence / "corrupt.jsonl.gz", bytes(data))
    case = load(evidence)
    row = only_row(case)
    assert row["status"] == "partial" and row["records_loaded"] > 0
    assert any("gzip" in why for _, why in issues_of(case, "note"))
    assert_reconciled(case)


def test_hostile_keys_cannot_overwrite_provenance(evidence: Path) -> None:
    event = at_event(1, source_file="/etc/passwd", source_record=-1)
    write(evidence / "h.jsonl", jsonl([event]))
    at = load(evidence).actiontrail.iloc[0]
    assert at["source_file"].endswith("h.jsonl") and at["source_record"] == 1
    assert at["extra:source_file"] == "/etc/passwd"


def test_excerpts_escape_control_characters(evidence: Path) -> None:
    write(evidence / "c.jsonl", b'{"eventId": "\x1b[2J", broken\n')
    case = load(evidence)
    assert "\x1b" not in case.issues.excerpt.item() and "\\x1b" in case.issues.excerpt.item()


def test_every_file_has_a_hash(evidence: Path) -> None:
    write(evidence / "a.jsonl", jsonl([at_event(1)]))
    write(evidence / "b.bin", b"\x00\x01")
    case = load(evidence)
    import hashlib

    for path, digest in zip(case.manifest.path, case.manifest.sha256, strict=True):
        assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_lookup_events_page_inside_json_lines_is_unwrapped(evidence: Path) -> None:
    page = json.loads(__import__("conftest").lookup_events_page([at_event(1), at_event(2)]))
    write(evidence / "pages.jsonl", jsonl([page, page]))  # the same page saved twice
    case = load(evidence)
    row = only_row(case)
    assert (row["records_read"], row["records_loaded"], row["duplicates"]) == (4, 2, 2)
    assert case.actiontrail.source_item.tolist() == [0, 1]


def test_identity_that_is_not_an_object_is_kept_and_reported(evidence: Path) -> None:
    write(
        evidence / "u.jsonl",
        jsonl([at_event(1, userIdentity="root@example.com"), at_event(2, userIdentity={})]),
    )
    case = load(evidence)
    assert len(case.actiontrail) == 2
    assert case.actiontrail.userIdentity.tolist()[0] == "root@example.com"
    fields = issues_of(case, "field")
    assert len(fields) == 1 and "userIdentity is not an object (VARCHAR)" in fields[0][1]


def test_the_first_file_in_discovery_order_keeps_a_repeated_event(evidence: Path) -> None:
    event = at_event(1)
    write(evidence / "a-lines.jsonl", jsonl([event]))  # read by the line reader
    oss_array(evidence / "b-oss/Actiontrail_1.gz", [event])  # read by the fast array reader
    write(evidence / "c-plain.json", dumps([event]))  # plain array on disk: fast reader too
    case = load(evidence)
    assert case.actiontrail.source_file.tolist() == [str(evidence / "a-lines.jsonl")]
    assert case.manifest.duplicates.tolist() == [0, 1, 1]
    assert case.manifest.format.tolist() == ["json-lines:actiontrail", "json-array", "json-array"]
