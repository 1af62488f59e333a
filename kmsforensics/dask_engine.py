"""The dask engine: a case store as dask DataFrames, one partition per day.

``kf.open(CASE_DIR, engine="dask")`` returns a :class:`DaskCase`, whose ``activity``,
``kms`` and ``actiontrail`` are dask DataFrames built with ``dask.dataframe.from_map``
over the store's days; every partition is read by the same code as the pandas path
(:func:`kmsforensics.store.read.read_frame`, on the files the store listed when the
case was opened), so it holds exactly the rows and types ``kf.open(CASE_DIR)`` would for
that day. The three frames share their days, so
partition *i* of each is the same day (``kf.build_graph`` and ``kf.detect`` rely on it).

Work runs on whatever ``dask.distributed`` Client is active (a ``LocalCluster`` on a
laptop, a cluster on Kubernetes or YARN); without one, a local cluster of one
single-threaded worker process per core is started on loopback, once per session.
Workers read the store themselves, so on a remote cluster it must be on storage they
all see.

``kf.load(EVIDENCE..., engine="dask")`` first ingests the evidence into a temporary
case store (removed when the case is garbage-collected); ingest to shared storage
with ``kf.ingest`` for a cluster.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.open("case-store", engine="dask")  # doctest: +SKIP
>>> case.activity.groupby("action").size().compute()  # doctest: +SKIP
>>> day = case.between("2026-03-10", "2026-03-11")  # a pandas Case  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import pandas as pd

from .case import Case, focus_mask, with_nested_objects
from .store import ENGINES, FRAMES, Store, StoreCase, ingest, is_store, looks_like_store
from .store.case import _summary
from .store.read import read_frame

_LOCAL_CLIENT: Any = None


def client() -> Any:
    """Return the active ``dask.distributed`` Client, or start a local cluster once.

    The local cluster has one single-threaded worker process per core, listening on
    127.0.0.1 only, without a dashboard.
    """
    import distributed

    global _LOCAL_CLIENT
    try:
        return distributed.default_client()
    except ValueError:
        pass
    if _LOCAL_CLIENT is None or _LOCAL_CLIENT.status != "running":
        cluster = distributed.LocalCluster(
            n_workers=os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        _LOCAL_CLIENT = distributed.Client(cluster, set_as_default=True)
    return _LOCAL_CLIENT


def _read_partition(
    root: str,
    name: str,
    schema: Any,
    columns: list[str] | None,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    hashes: dict[str, list[Any]],
    files: list[str],
) -> pd.DataFrame:
    """One day of one frame, from the files the store listed when the case was opened."""
    return read_frame(Path(root), name, files, schema, start, end, columns, hashes)


class DaskCase(StoreCase):
    """A case store whose frames are dask DataFrames (one partition per day).

    ``between`` and ``focus`` bring a slice into memory as a pandas :class:`Case`;
    ``kf.build_graph`` and the aggregation-based rules of ``kf.detect`` run on the
    cluster.
    """

    engine = "dask"

    @cached_property
    def days(self) -> list[str]:
        """The days of the case (one partition each)."""
        return self.store.days(self.start, self.end)

    @cached_property
    def client(self) -> Any:
        """The ``dask.distributed`` Client the frames are computed on."""
        return client()

    def _frame(self, name: str) -> Any:
        if self._frames[name] is None:
            self.client  # noqa: B018 - the frames compute on this Client (started if none)
            self._frames[name] = self._daily(name, self.columns)
        return self._frames[name]

    def _daily(self, name: str, columns: Sequence[str] | None) -> Any:
        """One frame as a dask DataFrame of one partition per day (``columns`` only)."""
        import dask
        import dask.dataframe as dd
        from dask.dataframe.utils import clear_known_categories

        wanted = list(columns) if columns is not None else None
        meta = clear_known_categories(self.store.read(name, [], self.start, self.end, wanted))
        days = self.days or ["none"]
        files = [self.store.day_files(name, [day]) for day in days]
        reader = partial(
            _read_partition,
            str(self.store.root),
            name,
            self.store.schemas[name],
            wanted,
            self.start,
            self.end,
            {p: self.store.files[p] for day in files for p in day},
        )
        with dask.config.set({"dataframe.convert-string": False}):  # keep our dtypes
            return dd.from_map(
                reader,
                files,
                meta=meta,
                enforce_metadata=False,
                label=f"kmsforensics-{name}",
            )

    @property
    def actiontrail(self) -> Any:
        """ActionTrail events with nested objects as dicts (parsed per partition)."""
        if self._actiontrail is None:
            at: Any = self._actiontrail_text
            self._actiontrail = at.map_partitions(with_nested_objects, meta=at._meta)
        return self._actiontrail

    def partitions(
        self, columns: dict[str, list[str] | None] | None = None
    ) -> list[tuple[Any, Any, Any]]:
        """Delayed (activity, kms, actiontrail) of each day, aligned.

        ``columns`` may name, per frame, the only columns to read (with time, source
        and provenance); the graph and the rule pack read far fewer than all.
        """
        columns = columns or {}
        frames = []
        for name in FRAMES:
            chosen = columns.get(name, self.columns)
            if chosen is not None and self.columns is not None:
                chosen = [c for c in chosen if c in self.columns]
            frames.append(self._daily(name, chosen).to_delayed())
        return list(zip(*frames, strict=True))

    def focus(self, ref: str) -> Case:
        """Return the events that involve ``ref``, selected on the cluster (a pandas Case)."""
        act: Any = self.activity
        rows = act.map_partitions(lambda p: p[focus_mask(p, ref)], meta=act._meta).compute()
        return self._focused(rows.reset_index(drop=True), ref)

    def summary(self) -> dict[str, Any]:
        """Return the facts a summary shows.

        For the whole case they come from the store file; for a slice they are
        aggregated on the cluster (three columns read).
        """
        import dask

        if self.start is None and self.end is None:
            return super().summary()

        self.client  # noqa: B018 - computed on this Client
        act: Any = self._daily("activity", ["time", "source", "account_id", "call_id"])
        calls = act["call_id"].nunique() if "call_id" in act.columns else act["time"].size
        low, high, sources, accounts, calls = dask.compute(
            act["time"].min(),
            act["time"].max(),
            act["source"].astype(object).value_counts(),
            act["account_id"].dropna().astype(object).unique(split_out=1),
            calls,
        )
        facts = _summary(self.manifest, self.issues, act._meta)
        facts["events"] = {
            "kms": int(sources.get("kms", 0)),
            "actiontrail": int(sources.get("actiontrail", 0)),
        }
        total = sum(facts["events"].values())
        facts["start"] = low if total else None
        facts["end"] = high if total else None
        facts["accounts"] = len(accounts)
        facts["calls"] = int(calls) if total else 0
        return facts


def open_dask(store: Store, columns: Sequence[str] | None = None) -> DaskCase:
    """Open a case store with the dask engine (``kf.open(CASE_DIR, engine="dask")``)."""
    case = DaskCase(store, columns=columns)
    case.client  # noqa: B018 - start (or find) the Client now, not at the first compute
    return case


def load_dask(sources: Sequence[Any], options: dict[str, Any]) -> DaskCase | None:
    """Ingest evidence into a temporary case store and open it with the dask engine.

    Registered with the loader (by :mod:`kmsforensics`) for
    ``kf.load(EVIDENCE..., engine="dask")``; None for another engine.
    """
    if options.get("engine") != "dask" or any(is_store(s) or looks_like_store(s) for s in sources):
        return None  # not this engine, or a store (the store's own opener takes it)
    folder = Path(tempfile.mkdtemp(prefix="kmsforensics-store-"))
    try:
        ingest(
            *sources,
            out=folder,
            progress=options["progress"],
            strict=options["strict"],
            max_bytes=options["max_bytes"],
            column_map=options["column_map"],
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    case = open_dask(Store(folder))
    weakref.finalize(case, shutil.rmtree, folder, True)
    return case


ENGINES["dask"] = open_dask
