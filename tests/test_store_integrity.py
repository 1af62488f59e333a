"""The case store under faults: killed ingests, two ingests at once, damaged files.

The evidence here is written for these tests: KMS records as gzip JSON lines and
ActionTrail events as gzip JSON arrays, spread over four days, with a second delivery
that repeats some events byte for byte (duplicates) and adds others. Every test compares
the store with ``kf.load`` of the same evidence in memory: nothing lost, nothing
counted twice.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import load_case

import kmsforensics as kf
from kmsforensics.store import STORE_FILE
from kmsforensics.store.lock import writer_lock

DAYS = ["2026-05-09", "2026-05-10", "2026-05-11", "2026-05-12"]
#: Small batches (two files each), so the killed ingest commits four times.
BATCH = 220_000


def kms_line(n: int, day: str) -> dict[str, Any]:
    """A KMS instance record, its fields in an order unlike the generator's."""
    return {
        "time": f"{day}T{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}.{n % 1000:03d}+00:00",
        "request_id": f"req-{day}-{n:07d}",
        "api_name": ["GetSecretValue", "Encrypt", "Decrypt", "GenerateDataKey"][n % 4],
        "status_code": 200 if n % 11 else 403,
        "instance_id": "kst-integrity0000000001",
        "client_ip": f"192.0.2.{n % 200 + 1}",
        "access_key_id": f"KAAP.{n % 5:08x}-aaaa-bbbb-cccc-000000000000",
        "identity_type": "aap",
        "principal_id": f"app-{n % 5}",
        "account_id": "5550001112223334",
        "resource_id": f"secret/app-{n % 9}",
        "version": "V1.0",
    }


def at_event(n: int, day: str) -> dict[str, Any]:
    """An ActionTrail event of a RAM user, with nested parameters."""
    return {
        "eventId": f"EV-{day}-{n:08d}",
        "eventTime": f"{day}T{(n * 5) % 24:02d}:{n % 60:02d}:{(n * 3) % 60:02d}Z",
        "eventName": ["DescribeKey", "ListSecrets", "GetSecretValue", "CreateKey"][n % 4],
        "eventSource": "kms.cn-shanghai.aliyuncs.com",
        "serviceName": "Kms",
        "requestId": f"AT-REQ-{day}-{n:08d}",
        "sourceIpAddress": f"198.51.100.{n % 250 + 1}",
        "userIdentity": {
            "type": "ram-user",
            "accountId": "5550001112223334",
            "principalId": f"2000000000000{n % 7:04d}",
            "userName": f"analyst-{n % 7}",
            "accessKeyId": f"LTAI5tINTEGRITY{n % 7:010d}",
        },
        "requestParameters": {"KeyId": f"key-integrity-{n % 13}", "Limit": n % 50},
        "eventType": "ApiCall",
        "acsRegion": "cn-shanghai",
        "eventVersion": "1",
    }


def gz(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0))
    return path


def kms_file(path: Path, day: str, numbers: range) -> Path:
    return gz(path, b"".join(json.dumps(kms_line(n, day)).encode() + b"\n" for n in numbers))


def at_file(path: Path, day: str, numbers: range) -> Path:
    return gz(path, json.dumps([at_event(n, day) for n in numbers]).encode())


def delivery_a(root: Path) -> Path:
    """Eight files over the four days."""
    for i, day in enumerate(DAYS):
        kms_file(root / f"kms/{day}/instance.log.gz", day, range(0, 260))
        at_file(root / f"trail/{day}/events.json.gz", day, range(i * 1000, i * 1000 + 150))
    return root


def delivery_b(root: Path) -> Path:
    """Another delivery: repeats of A (byte for byte) next to new events, two days."""
    kms_file(root / "export/kms-a.jsonl.gz", DAYS[1], range(200, 420))  # 60 repeats of A
    at_file(root / "export/trail-a.json.gz", DAYS[2], range(2100, 2260))  # 50 repeats of A
    kms_file(root / "export/kms-b.jsonl.gz", DAYS[3], range(5000, 5100))
    return root


#: Where a row was read: of two byte-identical copies, the one ingested first is kept
#: (and a row's own call id is made from its provenance).
PROVENANCE = ["source_file", "source_record", "source_item", "call_id"]


def plain(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The rows without their provenance, in one order, categoricals as objects."""
    frame = frame.drop(columns=[c for c in PROVENANCE if c in frame])
    frame = frame.astype({c: object for c in frame.columns if frame[c].dtype == "category"})
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def assert_holds(store: Path, memory: kf.Case) -> None:
    """The store holds the rows of the in-memory case, each once, and every file once."""
    case = kf.open(store, verify=True)
    keys = ["source", "time", "request_id", "event_id"]
    expected = plain(memory.activity, keys)
    pd.testing.assert_frame_equal(
        plain(case.activity, keys)[list(expected.columns)], expected, check_dtype=False
    )
    for name, key in (("kms", ["request_id"]), ("_actiontrail_text", ["eventId"])):
        expected = plain(getattr(memory, name), key)
        found = plain(getattr(case, name), key)[list(expected.columns)]
        pd.testing.assert_frame_equal(found, expected, check_dtype=False)
    manifest = case.manifest
    assert manifest["path"].is_unique
    assert set(manifest["path"]) == set(memory.manifest["path"])
    for column in ("records_read", "records_loaded", "duplicates"):
        assert manifest[column].sum() == memory.manifest[column].sum(), column
    assert manifest["records_loaded"].sum() == len(case.kms) + len(case._actiontrail_text)
    summary = case.summary()
    assert summary["events"] == {"kms": len(memory.kms), "actiontrail": len(memory.actiontrail)}
    assert summary["calls"] == memory.summary()["calls"]


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, kf.Case]:
    root = tmp_path_factory.mktemp("integrity")
    a, b = delivery_a(root / "a"), delivery_b(root / "b")
    memory = load_case(a, b, on_warning="error")
    assert memory.manifest["duplicates"].sum() == 110
    return a, b, memory


#: A process that imports kmsforensics, says so, waits for a line, then ingests.
INGEST = """
import sys, warnings
import kmsforensics as kf
print("ready", flush=True)
sys.stdin.readline()
kf.ingest(*sys.argv[2:], out=sys.argv[1], progress=False, batch_bytes={batch})
print("done", flush=True)
"""


def start_ingest(store: Path, *sources: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(kf.__file__).parents[1])}
    process = subprocess.Popen(
        [sys.executable, "-c", INGEST.format(batch=BATCH), str(store), *map(str, sources)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


# -- kill -9 at many points --------------------------------------------------------------------

TIMINGS = 20


def test_an_ingest_killed_at_any_point_loses_nothing(
    evidence: tuple[Path, Path, kf.Case], tmp_path: Path
) -> None:
    a, b, memory = evidence
    started = time.perf_counter()
    probe = start_ingest(tmp_path / "probe", a)
    begun = time.perf_counter()
    go(probe)
    assert probe.wait(timeout=120) == 0
    duration = time.perf_counter() - begun
    assert len(json.loads((tmp_path / "probe" / STORE_FILE).read_text())["batches"]) == 4
    outcomes = []
    waiting = start_ingest(tmp_path / "store-0", a)
    for i in range(TIMINGS):
        store = tmp_path / f"store-{i}"
        process = waiting
        go(process)
        time.sleep(duration * 1.1 * (i + 0.5) / TIMINGS)  # from the start to past the end
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        if i + 1 < TIMINGS:  # the next one imports while this store is checked
            waiting = start_ingest(tmp_path / f"store-{i + 1}", a)
        outcomes.append(_after_kill(store))
        first = kf.ingest(b, out=store, progress=False)  # a different one
        again = kf.ingest(a, out=store, progress=False)  # the same again
        assert again.files_added + first.files_added + outcomes[-1] >= len(memory.manifest)
        numbers = [n["number"] for n in json.loads((store / STORE_FILE).read_text())["batches"]]
        assert numbers == sorted(set(numbers))  # never reused
        assert_holds(store, memory)
        shutil.rmtree(store)
    print(
        f"\n{TIMINGS} kill timings over a {duration:.2f} s ingest; committed files before "
        f"the kill: {outcomes}; {time.perf_counter() - started:.0f} s in all"
    )
    assert outcomes[0] < len(memory.manifest) - len(list(b.rglob("*.gz")))  # early kills...
    assert max(outcomes) > 0  # ...and late ones


def _after_kill(store: Path) -> int:
    """The store opens after the kill (or was not begun); return the files committed."""
    if not (store / STORE_FILE).exists():
        assert not store.exists() or not any(
            p.name != "kmsforensics-store.lock" for p in store.iterdir()
        )
        return 0
    case = kf.open(store, verify=True)
    assert len(case.activity) == sum(case.summary()["events"].values())
    return len(case.manifest)


def test_leftovers_of_a_batch_that_never_committed_are_not_adopted(
    evidence: tuple[Path, Path, kf.Case], tmp_path: Path
) -> None:
    a, b, memory = evidence
    store = tmp_path / "store"
    kf.ingest(a, out=store, progress=False, batch_bytes=BATCH)
    info = json.loads((store / STORE_FILE).read_text())
    following = info["next_batch"]
    planted = []
    for relative in info["batches"][0]["files"]:  # as a crash leaves a batch
        path = store / relative
        target = path.with_name(path.name.replace("000001", f"{following:06d}"))
        shutil.copy(path, target)
        planted.append(target)
    report = kf.ingest(b, out=store, progress=False, batch_bytes=BATCH)
    assert report.leftovers_removed == len(planted) and min(report.batches) == following
    assert_holds(store, memory)


# -- two at once ------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["disjoint-days", "shared-days"])
def test_two_ingests_at_once_lose_nothing(tmp_path: Path, shared: bool) -> None:
    if shared:  # the same days, and events of one repeated in the other
        x = delivery_a(tmp_path / "x")
        y = delivery_b(tmp_path / "y")
    else:
        x, y = tmp_path / "x", tmp_path / "y"
        for day in DAYS[:2]:
            kms_file(x / f"{day}.jsonl.gz", day, range(0, 400))
            at_file(x / f"{day}.json.gz", day, range(0, 200))
        for day in DAYS[2:]:
            kms_file(y / f"{day}.jsonl.gz", day, range(0, 400))
            at_file(y / f"{day}.json.gz", day, range(0, 200))
    store = tmp_path / "store"
    first, second = start_ingest(store, x), start_ingest(store, y)
    go(first)
    go(second)
    assert (first.wait(timeout=180), second.wait(timeout=180)) == (0, 0)
    assert_holds(store, load_case(x, y, on_warning="error"))
    ingests = json.loads((store / STORE_FILE).read_text())["ingests"]
    assert len(ingests) == 2


def test_a_second_writer_names_the_one_holding_the_store(tmp_path: Path) -> None:
    evidence = kms_file(tmp_path / "kms.jsonl.gz", DAYS[0], range(10))
    store = tmp_path / "store"
    kf.ingest(evidence, out=store, progress=False)
    with writer_lock(store, wait=0), pytest.raises(kf.StoreLockedError) as caught:
        kf.ingest(kms_file(tmp_path / "more.jsonl.gz", DAYS[1], range(5)), out=store,
                  progress=False, wait=0.3)  # fmt: skip
    message = str(caught.value)
    assert f"process {os.getpid()} on {os.uname().nodename} since 20" in message
    assert caught.value.holder["pid"] == os.getpid()
    assert len(kf.open(store).kms) == 10  # untouched


# -- damaged stores ----------------------------------------------------------------------------


@pytest.fixture()
def store(evidence: tuple[Path, Path, kf.Case], tmp_path: Path) -> Path:
    out = tmp_path / "store"
    kf.ingest(evidence[0], out=out, progress=False, batch_bytes=BATCH)
    return out


def a_part(store: Path) -> Path:
    return sorted((store / "actiontrail").rglob("*.parquet"))[1]


def test_a_deleted_file_is_an_error_naming_it(store: Path) -> None:
    part = a_part(store)
    part.unlink()
    with pytest.raises(kf.StoreIntegrityError, match=rf"{part.name}: .*missing") as caught:
        kf.open(store)
    assert caught.value.path == str(part)
    with pytest.raises(kf.StoreIntegrityError):
        kf.load(store)  # the old way too: never fewer rows in silence


def test_a_truncated_file_is_found_when_opening(store: Path) -> None:
    part = a_part(store)
    part.write_bytes(part.read_bytes()[:-100])
    with pytest.raises(kf.StoreIntegrityError, match=rf"{part.name}: .*changed"):
        kf.open(store)


def test_a_changed_file_is_named_when_read_or_verified(store: Path) -> None:
    part = a_part(store)
    data = bytearray(part.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, other bytes
    part.write_bytes(bytes(data))
    case = kf.open(store)  # sizes agree: opening is cheap and passes
    with pytest.raises(kf.StoreIntegrityError, match=rf"{part.name}: .*SHA-256") as caught:
        len(case.actiontrail)
    assert caught.value.path == str(part)
    with pytest.raises(kf.StoreIntegrityError, match=rf"{part.name}: .*SHA-256"):
        kf.open(store, verify=True)


def test_a_store_without_its_store_file_is_refused_not_read_as_evidence(store: Path) -> None:
    (store / STORE_FILE).unlink()
    for attempt in (kf.open, kf.load):
        with pytest.raises(kf.StoreIntegrityError, match="laid out as a case store"):
            attempt(store)
    with pytest.raises(kf.StoreError, match="not a kmsforensics case store"):
        kf.ingest(store / "kms", out=store, progress=False)


def test_kf_load_on_a_store_still_opens_it_with_a_future_warning(store: Path) -> None:
    with pytest.warns(FutureWarning, match=r"kf.open\(CASE_DIR"):
        case = kf.load(store, columns=["action"])
    assert type(case).__name__ == "StoreCase"
    assert len(case.activity) == len(kf.open(store).activity)


# -- a file larger than a batch ------------------------------------------------------------------


def test_a_file_larger_than_a_batch_is_read_in_chunks_as_load_reads_it(tmp_path: Path) -> None:
    lines = [json.dumps(kms_line(n, DAYS[n % 3])).encode() for n in range(3000)]
    lines[1234] = b'{"time": "2026-05-09T01:02:03Z", "request_id": '  # a broken record
    lines[2500] = lines[100]  # a duplicate of an earlier chunk's record
    big = gz(tmp_path / "sls-download.log.gz", b"\n".join(lines) + b"\n")
    memory = load_case(big)
    store = tmp_path / "store"
    report = kf.ingest(big, out=store, progress=False, batch_bytes=60_000)
    parts = [p for p in (store / "kms").rglob("*.parquet") if p.stem.count("-") == 2]
    assert report.batches == [1] and len(parts) > 6  # one batch, in many chunks
    assert not (store / "scratch").exists()
    case = kf.open(store, verify=True)
    keys = ["time", "request_id"]
    pd.testing.assert_frame_equal(
        case.kms.sort_values(keys).reset_index(drop=True).astype({"source_file": object}),
        memory.kms.sort_values(keys).reset_index(drop=True).astype({"source_file": object}),
        check_categorical=False,
    )
    columns = ["source_file", "source_record", "severity"]
    assert case.issues[columns].astype(str).values.tolist() == (
        memory.issues[columns].astype(str).values.tolist()
    )
    counts = ["path", "sha256", "bytes", "records_read", "records_loaded", "records_rejected",
              "duplicates", "status", "compression"]  # fmt: skip
    assert case.manifest[counts].astype(str).values.tolist() == (
        memory.manifest[counts].astype(str).values.tolist()
    )


def test_ingest_lists_paths_it_cannot_read_as_load_does(tmp_path: Path) -> None:
    """A FIFO and a dangling link are skipped manifest rows of the store, as in kf.load."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    sample = (
        Path(__file__).parent / "fixtures" / "vendor_lookupevents_assumed_role_cross_account.json"
    )
    (evidence / "page.json").write_bytes(sample.read_bytes())
    os.mkfifo(evidence / "pipe")
    (evidence / "dangling").symlink_to(tmp_path / "nowhere")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = kf.load(evidence, progress=False).manifest
        kf.ingest(evidence, out=tmp_path / "store", progress=False)
        kf.ingest(evidence, out=tmp_path / "store", progress=False)  # again: listed once
    stored = kf.open(tmp_path / "store").manifest
    columns = ["path", "status", "reason"]
    assert sorted(map(tuple, stored[columns].to_numpy())) == sorted(
        map(tuple, loaded[columns].to_numpy())
    )
    skipped = stored.set_index("path").loc[[str(evidence / "pipe"), str(evidence / "dangling")]]
    assert (skipped["status"] == "skipped").all()
    with pytest.raises(kf.UnreadableEvidenceError, match=r"pipe|dangling"):
        kf.ingest(evidence, out=tmp_path / "strict", progress=False, strict=True)


# -- fusion across ingests, each value stored once ------------------------------------------

ROLE_ID = "318274659012345678"
STS_KEY = "STS.NUlaterIngestKey9wQz"
PAIR_ID = "C0FFEE00-1111-4222-8333-000000000042"


def role_kms_line(n: int, **overrides: Any) -> dict[str, Any]:
    """A KMS record of a RAM role: the log gives the role's numeric id, not its name."""
    record = {
        "version": "V1.0",
        "api_name": "GetSecretValue",
        "time": f"2026-06-01T08:{n:02d}:00Z",
        "request_id": f"role-req-{n:04d}",
        "identity_type": "ram-role",
        "principal_id": ROLE_ID,
        "access_key_id": STS_KEY,
        "account_id": "7770001112223334",
        "resource_id": "ops/deploy-token",
        "client_ip": "198.51.100.7",
        "status_code": 200,
    }
    record.update(overrides)
    return record


def naming_events() -> list[dict[str, Any]]:
    """An AssumeRole that issued the role's STS key, and the gateway half of one call."""
    assume = {
        "eventName": "AssumeRole",
        "eventTime": "2026-06-01T07:59:00Z",
        "eventId": "AR-0001",
        "requestId": "AR-REQ-0001",
        "eventSource": "sts.aliyuncs.com",
        "serviceName": "Sts",
        "userIdentity": {
            "type": "ram-user",
            "principalId": "209988776655443322",
            "accountId": "7770001112223334",
            "userName": "release-bot",
            "accessKeyId": "LTAI5tLaterIngestUser01",
        },
        "requestParameters": {
            "RoleArn": "acs:ram::7770001112223334:role/release-role",
            "RoleSessionName": "release-42",
        },
        "responseElements": {
            "Credentials": {"AccessKeyId": STS_KEY, "Expiration": "2026-06-01T09:00:00Z"},
            "AssumedRoleUser": {
                "AssumedRoleId": f"{ROLE_ID}:release-42",
                "Arn": "acs:ram::7770001112223334:role/release-role/release-42",
            },
        },
    }
    gateway = {
        "eventName": "GetSecretValue",
        "eventTime": "2026-06-01T08:03:00Z",
        "eventId": "GW-0003",
        "requestId": PAIR_ID,
        "eventSource": "kms.cn-shanghai.aliyuncs.com",
        "serviceName": "Kms",
        "userIdentity": {
            "type": "assumed-role",
            "principalId": f"{ROLE_ID}:release-42",
            "accountId": "7770001112223334",
            "accessKeyId": STS_KEY,
            "userName": "release-role:release-42",
        },
        "requestParameters": {"SecretName": "ops/deploy-token"},
    }
    return [assume, gateway]


def test_a_later_ingest_fuses_only_the_rows_it_can_change(tmp_path: Path) -> None:
    """Names and a call's pair arrive in a later ingest: the stored rows they concern are
    fused again as kf.load fuses everything; a day they do not concern is not rewritten."""
    role = [role_kms_line(n) for n in range(6)]
    role[3]["request_id"] = PAIR_ID  # the KMS half of the gateway call
    kms_day1 = tmp_path / "ev" / "kms-role.jsonl"
    kms_day1.parent.mkdir()
    kms_day1.write_text("\n".join(json.dumps(r) for r in role) + "\n")
    kms_day2 = kms_file(tmp_path / "ev" / "kms-other.jsonl.gz", DAYS[1], range(40))
    names = gz(tmp_path / "later" / "trail.json.gz", json.dumps(naming_events()).encode())
    store = tmp_path / "store"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kf.ingest(kms_day1, kms_day2, out=store, progress=False)
        before = json.loads((store / STORE_FILE).read_text())
        kf.ingest(names, out=store, progress=False)
        memory = kf.load(kms_day1, kms_day2, names, progress=False)
    after = json.loads((store / STORE_FILE).read_text())
    files = lambda info: {p: f for b in info["batches"] for p, f in b["files"].items()}  # noqa: E731
    other_day = [p for p in files(before) if p.startswith(f"activity/day={DAYS[1]}/")]
    assert other_day and all(files(after).get(p) == files(before)[p] for p in other_day)
    assert any(".fused-" in p for p in files(after) if p.startswith("activity/day=2026-06-01"))
    assert all(b["fused"] for b in after["batches"])

    case = kf.open(store, verify=True)
    fused = ["call_id", "principal_name", "session_name", "player_account_id",
             "principal_name_source"]  # fmt: skip
    keys = ["source", "time", "request_id"]
    left = case.activity.sort_values(keys).reset_index(drop=True)[fused].astype(object)
    right = memory.activity.sort_values(keys).reset_index(drop=True)[fused].astype(object)
    assert left.where(left.notna(), None).values.tolist() == (
        right.where(right.notna(), None).values.tolist()
    )
    roles = case.activity[case.activity["principal_id"].astype(object) == ROLE_ID]
    kms_rows = roles[roles["source"].astype(object) == "kms"]
    assert set(kms_rows["principal_name"].astype(object)) == {"release-role"}
    assert set(kms_rows["principal_name_source"].astype(object)) >= {"actiontrail", "assume-role"}
    pair = case.activity[case.activity["request_id"].astype(object) == PAIR_ID]
    assert len(pair) == 2 and pair["call_id"].nunique() == 1
    assert case.summary()["calls"] == memory.summary()["calls"] == len(case.activity) - 1


def test_values_held_twice_are_stored_once_and_read_back_exactly(tmp_path: Path) -> None:
    """An activity column equal to its KMS file's column is a reference, checked, restored."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from kmsforensics.store.columns import aliases_of, share_within

    evidence = kms_file(tmp_path / "kms.jsonl.gz", DAYS[0], range(300))
    store = tmp_path / "store"
    kf.ingest(evidence, out=store, progress=False)
    (activity,) = (store / "activity").rglob("*.parquet")
    stored = pq.read_table(activity)
    references = aliases_of(stored.schema)["from"]
    kms_path = references["request_id"]["kms"][0]
    assert kms_path.startswith(f"kms/day={DAYS[0]}/")
    assert references["request_id"]["kms"][1] == "request_id"
    assert stored.column("request_id").null_count == stored.num_rows  # not stored twice
    memory = kf.load(evidence, progress=False)
    keys = ["time", "request_id"]
    pd.testing.assert_frame_equal(
        plain(kf.open(store).activity, keys), plain(memory.activity, keys), check_categorical=False
    )
    # a column that differs from another in one row is kept whole
    table = pa.table({"a": ["x", "y", "z"], "b": ["x", "y", "Z"], "c": ["x", "y", "z"]})
    shared, same = share_within(table)
    assert same == {"c": "a"}
    assert shared.column("b").to_pylist() == ["x", "y", "Z"]
    assert shared.column("c").null_count == 3
