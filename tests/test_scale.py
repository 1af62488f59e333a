"""The case store and the dask engine: the same rows, graph and findings as pandas.

The dask tests run a real ``dask.distributed.LocalCluster`` (two worker processes on
loopback) on the generated five-attack case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pytest
from conftest import jsonl, kms_record, load_case, write

import kmsforensics as kf
from kmsforensics.detections import RULES
from kmsforensics.store import STORE_FILE

DAY = ("2026-03-03", "2026-03-04")


def plain(frame: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Categoricals as objects (their category lists differ by load), optionally sorted."""
    frame = frame.astype({c: object for c in frame.columns if frame[c].dtype == "category"})
    if order:
        frame = frame.sort_values(order, kind="stable")
    return frame.reset_index(drop=True)


def assert_same_case(store_case: kf.Case, memory_case: kf.Case) -> None:
    pd.testing.assert_frame_equal(plain(store_case.activity), plain(memory_case.activity))
    by_record = ["source_file", "source_record", "source_item"]
    pd.testing.assert_frame_equal(
        plain(store_case.kms, by_record), plain(memory_case.kms, by_record)
    )
    pd.testing.assert_frame_equal(
        plain(store_case._actiontrail_text, by_record),
        plain(memory_case._actiontrail_text, by_record),
    )
    pd.testing.assert_frame_equal(
        plain(store_case.manifest, ["path"]), plain(memory_case.manifest, ["path"])
    )


def tally(counts: pd.Series) -> dict[tuple[str, ...], int]:
    return {tuple(map(str, key)): int(n) for key, n in counts.items()}


def assert_same_graph(left: nx.MultiDiGraph, right: nx.MultiDiGraph) -> None:
    assert dict(left.nodes(data=True)) == dict(right.nodes(data=True))
    edges = {(u, v, k): d for u, v, k, d in left.edges(keys=True, data=True)}
    assert edges == {(u, v, k): d for u, v, k, d in right.edges(keys=True, data=True)}


@pytest.fixture(scope="module")
def store(five_attacks_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five-attack evidence ingested in many small batches."""
    out = tmp_path_factory.mktemp("store") / "case"
    report = kf.ingest(
        five_attacks_folder / "evidence", out=out, progress=False, batch_bytes=2_000_000
    )
    assert len(report.batches) > 3
    return out


# -- the case store ------------------------------------------------------------------------


def test_store_holds_what_load_gives_by_source_and_day(
    store: Path, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    case = kf.open(store)
    assert type(case).__name__ == "StoreCase" and case.engine == "pandas"
    assert_same_case(case, memory)
    assert case.summary() == memory.summary()
    days = sorted(p.name for p in (store / "kms").iterdir())
    assert days == ["day=2026-03-02", "day=2026-03-03", "day=2026-03-04"]
    for source in ("kms", "actiontrail", "activity"):
        assert sorted(p.name for p in (store / source).iterdir()) == days
    info = json.loads((store / STORE_FILE).read_text())
    assert info["loader_versions"] == [kf.__version__]
    assert set(case.manifest["sha256"]) == set(memory.manifest["sha256"])


def test_reingesting_the_same_evidence_changes_nothing(
    store: Path, five_attacks_folder: Path
) -> None:
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*.parquet")}
    batches = json.loads((store / STORE_FILE).read_text())["batches"]
    report = kf.ingest(five_attacks_folder / "evidence", out=store, progress=False)
    assert report.files_added == 0 and report.batches == []
    assert report.files_already_in_store == len(kf.open(store).manifest)
    assert json.loads((store / STORE_FILE).read_text())["batches"] == batches
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*.parquet")} == before


def test_between_reads_only_the_days_asked_for(
    store: Path, tmp_path: Path, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    copy = tmp_path / "case"
    shutil.copytree(store, copy)
    for other in ("day=2026-03-02", "day=2026-03-04"):  # unreadable: must not be read
        for part in copy.glob(f"*/{other}/*.parquet"):
            part.write_bytes(b"\0" * part.stat().st_size)  # same size: opening passes
    _, memory = five_attacks
    day = kf.open(copy).between(*DAY)
    assert day.summary() == memory.between(*DAY).summary()  # before the rows are read
    assert_same_case_rows(day, memory.between(*DAY))
    with pytest.raises(kf.StoreIntegrityError, match=r"day=2026-03-0[24].*SHA-256"):
        len(kf.open(copy).activity)


def assert_same_case_rows(store_case: kf.Case, memory_case: kf.Case) -> None:
    pd.testing.assert_frame_equal(plain(store_case.activity), plain(memory_case.activity))
    assert len(store_case.kms) == len(memory_case.kms)
    assert len(store_case._actiontrail_text) == len(memory_case._actiontrail_text)


def test_columns_are_read_only_when_asked_for(store: Path) -> None:
    case = kf.open(store, columns=["action", "client_ip"])
    assert set(case.activity.columns) == {
        "time", "source", "action", "client_ip", "request_id", "event_id",
        "source_file", "source_record",
    }  # fmt: skip
    assert len(case.activity) == len(kf.open(store).activity)


def test_an_uncommitted_batch_is_ignored(store: Path, tmp_path: Path) -> None:
    copy = tmp_path / "case"
    shutil.copytree(store, copy)
    for part in list(copy.glob("*/day=2026-03-03/batch-000001.parquet")):
        shutil.copy(part, part.with_name("batch-000999.parquet"))  # as a crash leaves it
    shutil.copy(
        copy / "manifest" / "batch-000001.parquet", copy / "manifest" / "batch-000999.parquet"
    )
    assert len(kf.open(copy).activity) == len(kf.open(store).activity)
    assert len(kf.open(copy).manifest) == len(kf.open(store).manifest)


def test_new_files_append_and_repeated_events_count_as_duplicates(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "kms-1.jsonl", jsonl(kms_record(i) for i in range(10)))
    later = write(tmp_path / "b" / "kms-2.jsonl", jsonl(kms_record(i) for i in range(5, 15)))
    out = tmp_path / "case"
    assert kf.ingest(first, out=out, progress=False).events_added["kms"] == 10
    report = kf.ingest(first, later, out=out, progress=False)
    assert (report.files_added, report.files_already_in_store) == (1, 1)
    assert report.duplicates == 5 and report.events_added["kms"] == 5
    case = kf.open(out)
    row = case.manifest.set_index("path").loc[str(later)]
    assert (row.records_read, row.records_loaded, row.duplicates) == (10, 5, 5)
    assert_same_case(case, load_case(first, later))


def test_a_copy_under_another_name_is_listed_not_read(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "kms-1.jsonl", jsonl(kms_record(i) for i in range(10)))
    copy = write(tmp_path / "b" / "kms-1-again.jsonl", first.read_bytes())
    out = tmp_path / "case"
    kf.ingest(first, out=out, progress=False)
    report = kf.ingest(first, copy, out=out, progress=False)
    assert (report.files_added, report.files_already_in_store) == (0, 2)
    case = kf.open(out)
    row = case.manifest.set_index("path").loc[str(copy)]
    assert row.status == "copy" and str(first) in row.reason
    assert row.sha256 == case.manifest.set_index("path").loc[str(first), "sha256"]
    assert (row.records_read, row.records_loaded, row.duplicates) == (0, 0, 0)
    assert len(case.kms) == 10
    again = kf.ingest(first, copy, out=out, progress=False)  # now listed: nothing to add
    assert again.batches == [] and len(kf.open(out).manifest) == 2


def test_ingest_command_line(tmp_path: Path) -> None:
    evidence = write(tmp_path / "kms.jsonl", jsonl(kms_record(i) for i in range(3)))
    run = subprocess.run(
        [sys.executable, "-m", "kmsforensics.cli", "ingest", str(evidence),
         "--out", str(tmp_path / "case"), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(run.stdout)["events_added"]["kms"] == 3
    run = subprocess.run(
        [sys.executable, "-m", "kmsforensics.cli", "load", str(tmp_path / "case")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "3 KMS records" in run.stdout


def test_a_folder_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "notes.txt", b"mine")
    with pytest.raises(kf.StoreError, match="not a kmsforensics case store"):
        kf.ingest(tmp_path / "notes.txt", out=tmp_path, progress=False)


# -- the dask engine ---------------------------------------------------------------------------


def test_dask_frames_hold_the_same_rows(
    store: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    case = kf.open(store, engine="dask")
    assert case.engine == "dask" and case.client is cluster
    assert case.activity.npartitions == 3  # one per day
    counts = case.activity.groupby(["source", "action"], observed=True).size().compute()
    expected = memory.activity.groupby(["source", "action"], observed=True).size()
    assert tally(counts) == tally(expected) and sum(tally(counts).values()) == len(memory.activity)
    assert (len(case.kms), len(case._actiontrail_text)) == (
        len(memory.kms),
        len(memory._actiontrail_text),
    )
    assert case.summary() == memory.summary()


def test_dask_graph_is_the_pandas_graph(
    store: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    assert_same_graph(kf.build_graph(kf.open(store, engine="dask")), kf.build_graph(memory))


def test_dask_findings_are_the_pandas_findings(
    store: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        expected = kf.detect(memory)
        found = kf.detect(kf.open(store, engine="dask"))
    on_dask = {r for r, rule in RULES.items() if rule.on_dask != "memory"}
    memory_only = {r for r in RULES if r not in on_dask}
    # the AAP rules read the whole configuration; every other rule runs on the cluster
    assert memory_only == {"D31", "D32", "D33"}
    assert {r for r, note in found.attrs["notes"].items() if "every row" in note} == memory_only
    expected = expected[expected.rule_id.isin(on_dask)].reset_index(drop=True)
    assert len(expected) > 30 and expected.rule_id.nunique() > 10
    pd.testing.assert_frame_equal(found.reset_index(drop=True), expected)


#: Thresholds low enough for the threshold rules to fire on the small case, with windows
#: that reach over midnight (7 h, shifted by 3.5 h), where days are selected apart.
LOW = {
    "D01": {"threshold": 4, "min_distinct": 3, "window": "7h"},
    "D03": {"min_count": 3, "multiplier": 1.5, "z": 1.0, "bin": "1h"},
    "D13": {"min_ips": 2, "min_networks": 1, "window": "7h"},
}


def test_dask_thresholds_are_the_pandas_thresholds(
    store: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    rules = ["D01", "D03", "D13", "D27"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.DetectionNote)
        expected = kf.detect(memory, rules=rules, params=LOW)
        found = kf.detect(kf.open(store, engine="dask"), rules=rules, params=LOW)
    assert set(expected.rule_id) == set(rules)
    pd.testing.assert_frame_equal(found, expected)


def test_dask_slices_come_back_in_memory(
    store: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    case = kf.open(store, engine="dask")
    day = case.between(*DAY)
    assert day.engine == "pandas"
    assert_same_case_rows(day, memory.between(*DAY))
    key = memory.activity["access_key_id"].dropna().astype(str).value_counts().index[5]
    focused, expected = case.focus(f"access-key:{key}"), memory.focus(f"access-key:{key}")
    assert len(expected.activity) > 0
    assert_same_case_rows(focused, expected)
    assert (focused.activity["access_key_id"].astype(str) == key).all()


def test_raw_evidence_on_dask(
    five_attacks_folder: Path, cluster: Any, five_attacks: tuple[dict[str, Any], kf.Case]
) -> None:
    _, memory = five_attacks
    case = kf.load(five_attacks_folder / "evidence", engine="dask", progress=False)
    folder = Path(case.store.root)
    assert folder.is_dir() and case.activity.npartitions == 3
    assert len(case.activity) == len(memory.activity)
    del case
    import gc

    gc.collect()
    assert not folder.exists()  # the temporary store goes with the case


def test_without_a_client_a_local_cluster_starts_on_loopback(store: Path) -> None:
    script = (
        "import kmsforensics as kf\n"
        "if __name__ == '__main__':\n"
        f"    case = kf.open({str(store)!r}, engine='dask')\n"
        "    workers = case.client.scheduler_info()['workers']\n"
        "    print(len(workers), sorted({w.split(':')[1] for w in workers}), len(case.activity))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    count, hosts, rows = run.stdout.split(maxsplit=2)
    assert int(count) >= 1 and hosts == "['//127.0.0.1']"
    assert int(rows) == len(kf.open(store).activity)


def test_the_loader_imports_neither_the_store_nor_the_dask_engine() -> None:
    import ast

    def imported(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):  # function-level imports too
            if isinstance(node, ast.ImportFrom):
                found.add("." * node.level + (node.module or ""))
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        return found

    package = Path(kf.__file__).parent
    assert not {m for m in imported(package / "loader.py") if "store" in m or "dask_engine" in m}
    for module in (package / "store").glob("*.py"):
        found = {m for m in imported(module) if "dask_engine" in m or "loader" in m}
        assert not found, f"store/{module.name} imports {found}"
    assert not {m for m in imported(package / "dask_engine.py") if "loader" in m}
    assert kf.store.open_for_load in kf.loader.OPENERS  # how kf.load reaches a store
    assert kf.dask_engine.load_dask in kf.loader.OPENERS  # kf.load(..., engine="dask")
    assert kf.store.write._parser() is kf.loader.load_hashed  # how ingest parses
