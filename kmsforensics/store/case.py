"""``kf.open``: a case store as a :class:`~kmsforensics.Case`, frames read when used.

:class:`StoreCase` reads each frame the first time it is asked for; ``between`` reads
only the days it covers and ``columns`` only those columns. Engines register here
(``ENGINES``): ``"pandas"`` is :class:`StoreCase`, and :mod:`kmsforensics.dask_engine`
adds ``"dask"``.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.open("case-store")  # doctest: +SKIP
>>> case.between("2026-03-02", "2026-03-03").activity  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ..calls import count_calls
from ..case import Case, TimeLike, focus_mask, records_behind, to_utc
from ..errors import StoreError, StoreIntegrityError
from .layout import STORE_FILE, days_of, is_store, looks_like_store
from .read import Store


class StoreCase(Case):
    """A :class:`~kmsforensics.case.Case` over a case store: frames read when first asked for.

    Only the days within ``between`` and the ``columns`` asked for are read.
    """

    def __init__(
        self,
        store: Store,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        self.store = store
        self.start, self.end = start, end
        self.columns = list(columns) if columns is not None else None
        parameters = {
            "store": str(store.root),
            "loader_versions": store.info["loader_versions"],
            "batches": store.batches,
        }
        if start is not None or end is not None:
            parameters["between"] = (start, end)
        super().__init__(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            store.issues(),
            store.manifest(),
            parameters,
        )

    def _frame(self, name: str) -> Any:
        if self._frames[name] is None:
            self._frames[name] = self.store.read(
                name, self.store.days(self.start, self.end), self.start, self.end, self.columns
            )
        return self._frames[name]

    def between(self, start: TimeLike = None, end: TimeLike = None) -> Case:
        """Return the case within ``[start, end)``, reading only those days (see Case)."""
        lo, hi = to_utc(start), to_utc(end)
        if self.start is not None:
            lo = self.start if lo is None else max(lo, self.start)
        if self.end is not None:
            hi = self.end if hi is None else min(hi, self.end)
        return StoreCase(self.store, lo, hi, self.columns)

    def focus(self, ref: str) -> Case:
        """Return the events that involve ``ref``, read day by day (see Case.focus)."""
        kept = []
        for day in self.store.days(self.start, self.end):
            rows = self.store.read_day("activity", day, self.start, self.end, self.columns)
            kept.append(rows[focus_mask(rows, ref)])
        activity = pd.concat(kept, ignore_index=True) if kept else self.activity.iloc[:0]
        return self._focused(activity, ref)

    def _focused(self, activity: pd.DataFrame, ref: str) -> Case:
        """Return the case of these activity rows, reading only their days' records."""
        days = sorted(set(days_of(activity["time"]))) if len(activity) else []
        kms, at = records_behind(
            activity,
            self.store.read("kms", days, self.start, self.end, self.columns),
            self.store.read("actiontrail", days, self.start, self.end, self.columns),
        )
        return Case(
            kms, at, activity, self.issues, self.manifest, {**self.parameters, "focus": ref}
        )

    def summary(self) -> dict[str, Any]:
        """Return the facts a summary shows.

        For the whole case they come from the store file (each batch's counts, time
        range and accounts); for a slice three activity columns are read.
        """
        if self.engine == "pandas" and self._frames["activity"] is not None:
            return super().summary()  # in memory already
        batches = [batch["facts"] for batch in self.store.info["batches"]]
        if self.start is None and self.end is None:
            facts = _summary_of_batches(self.manifest, self.issues, batches)
            if "calls" in self.store.info:  # counted over every batch, pairs across them
                facts["calls"] = int(self.store.info["calls"])
            return facts
        head = self.store.read(
            "activity",
            self.store.days(self.start, self.end),
            self.start,
            self.end,
            ["time", "source", "account_id", "call_id"],
        )
        return _summary(self.manifest, self.issues, head)


def _summary_of_batches(
    manifest: pd.DataFrame, issues: pd.DataFrame, batches: list[Any]
) -> dict[str, Any]:
    facts = _summary(manifest, issues, pd.DataFrame())
    starts = [pd.Timestamp(b["start"]) for b in batches if b["start"]]
    ends = [pd.Timestamp(b["end"]) for b in batches if b["end"]]
    facts["events"] = {
        "kms": sum(b["kms"] for b in batches),
        "actiontrail": sum(b["actiontrail"] for b in batches),
    }
    facts["calls"] = sum(b.get("calls", b["kms"] + b["actiontrail"]) for b in batches)
    facts["start"] = min(starts) if starts else None
    facts["end"] = max(ends) if ends else None
    facts["accounts"] = len({a for b in batches for a in b["accounts"]})
    return facts


def _summary(manifest: pd.DataFrame, issues: pd.DataFrame, head: pd.DataFrame) -> dict[str, Any]:
    formats = manifest.groupby("format", observed=True).size().to_dict()
    statuses = manifest.groupby("status", observed=True).size().to_dict()
    sources = head["source"].astype(object).value_counts() if len(head) else pd.Series()
    times = head["time"] if len(head) else pd.Series(dtype="datetime64[ns, UTC]")
    return {
        "files": len(manifest),
        "files_by_status": {str(k): int(v) for k, v in statuses.items()},
        "files_by_format": {str(k): int(v) for k, v in formats.items()},
        "events": {
            "kms": int(sources.get("kms", 0)),
            "actiontrail": int(sources.get("actiontrail", 0)),
        },
        "calls": count_calls(head) if len(head) else 0,
        "start": times.min() if len(times) else None,
        "end": times.max() if len(times) else None,
        "accounts": int(head["account_id"].dropna().nunique()) if len(head) else 0,
        "issues": len(issues),
    }


#: Engines that open a store: name -> (store, columns) -> Case.
ENGINES: dict[str, Callable[[Store, Sequence[str] | None], Case]] = {
    "pandas": lambda store, columns: StoreCase(store, columns=columns),
}


def open(
    case_dir: str | os.PathLike[str],
    engine: str = "pandas",
    columns: Sequence[str] | None = None,
    verify: bool = False,
) -> Case:
    """Open a case store (made by :func:`kmsforensics.ingest`) without reading its events.

    Parameters
    ----------
    case_dir : str or path-like
        The case store folder.
    engine : {"pandas", "dask"}, default "pandas"
        ``"pandas"``: frames read into memory when first used (``between`` reads only
        its days). ``"dask"``: dask DataFrames, one partition per day, computed on the
        active ``dask.distributed`` Client (or a local cluster on loopback).
    columns : list of str, optional
        Read only these columns (with time, source and provenance).
    verify : bool, default False
        Check the SHA-256 of every file of the store (sizes are always checked).

    Returns
    -------
    Case

    Raises
    ------
    StoreIntegrityError
        A file of the store is missing or changed (named), or the folder is a store
        that lost its store file.

    Examples
    --------
    >>> import kmsforensics as kf
    >>> case = kf.open("case-store", columns=["action", "client_ip"])  # doctest: +SKIP
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {sorted(ENGINES)}, not {engine!r}")
    return ENGINES[engine](Store(case_dir, verify=verify), columns)


def open_store(
    root: str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
) -> StoreCase:
    """Open a case store as a lazy pandas :class:`StoreCase`, optionally within a window."""
    return StoreCase(Store(root), to_utc(start), to_utc(end), columns)


def open_for_load(sources: Sequence[Any], options: dict[str, Any]) -> Case | None:
    """Open a case store given to ``kf.load`` (for one more release, with a FutureWarning).

    Registered with the loader; returns None when no source is a store. A folder laid
    out as a store without its store file is refused, never read as evidence.
    """
    for source in sources:
        if looks_like_store(source):
            raise StoreIntegrityError(
                str(source),
                f"this folder is laid out as a case store but has no {STORE_FILE}",
                "It is not evidence and cannot be opened as a store; restore "
                f"{STORE_FILE} from a copy, or ingest the evidence again into a new folder",
            )
    if not any(is_store(s) for s in sources):
        return None
    if len(sources) > 1:
        raise StoreError(
            "kf.load opens one case store at a time, without other evidence; add "
            "evidence to a store with kf.ingest(EVIDENCE..., out=CASE_DIR)"
        )
    warnings.warn(
        "kf.load(CASE_DIR) on a case store is deprecated and will be removed in the next "
        "release: use kf.open(CASE_DIR, engine=..., columns=...)",
        FutureWarning,
        stacklevel=4,
    )
    return open(sources[0], engine=options.get("engine", "pandas"), columns=options.get("columns"))
