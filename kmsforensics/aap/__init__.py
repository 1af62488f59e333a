"""Application access points: the configuration over time, and allowed against used.

``kf.aap_config(case)`` rebuilds what every AAP was allowed, and when, from the AAP
management events in ActionTrail and from configuration exports (saved responses of
the Describe and List APIs) among the evidence. ``kf.aap_review(case)`` joins the KMS
access log to it: what was allowed and used, allowed and never used, used but not
allowed at the time, addresses inside and outside the network rules, client keys used
after their deletion, first and last use. docs/aap.md gives the fields read.

Examples
--------
>>> import kmsforensics as kf
>>> case = kf.load(kf.datasets.path("incident-leaked-ci-key") / "evidence",
...                progress=False)  # doctest: +SKIP
>>> kf.aap_review(case).query("check == 'outside-network'")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .changes import OPERATIONS, Change, from_actiontrail
from .config import compose
from .exports import read_case_exports, read_exports
from .review import attribute, judge, review

__all__ = ["Configuration", "aap_config", "aap_review", "calls", "configuration"]

Exports = str | Path | Iterable[str | Path] | None


@dataclass
class Configuration:
    """The AAP configuration of a case, with what it was read from.

    Attributes
    ----------
    frame : pandas.DataFrame
        ``kf.aap_config`` (one row per element and interval).
    changes : list of Change
        The changes applied, events and exports, in no particular order.
    exports : list of dict
        Export files read (``source_file``, ``sha256``, ``objects``).
    problems : list of dict
        Export files or records that could not be read, and why.
    deleted_keys : dict
        Client key id -> when ``DeleteClientKey`` deleted it.
    """

    frame: pd.DataFrame
    changes: list[Change] = field(default_factory=list)
    exports: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)
    deleted_keys: dict[str, pd.Timestamp] = field(default_factory=dict)


def configuration(
    case: Any, exports: Exports = None, exported_at: str | datetime | pd.Timestamp | None = None
) -> Configuration:
    """Read and compose a case's AAP configuration (see :func:`aap_config`)."""
    at = case._actiontrail_text if hasattr(case, "_actiontrail_text") else case.actiontrail
    changes = from_actiontrail(_in_memory(at, lambda f: f["eventName"].isin(list(OPERATIONS))))
    when = _snapshot_time(case, exported_at)
    if exports is None:
        read = read_case_exports(case, when)
    else:
        paths = [exports] if isinstance(exports, str | Path) else list(exports)
        read = read_exports(paths, when)
    everything = changes + read.changes
    deleted = {
        c.name: c.time
        for c in sorted(everything, key=lambda c: c.time)
        if c.kind == "client-key" and c.action == "delete" and c.name
    }
    frame = compose(everything)
    frame.attrs["exports"] = read.files
    frame.attrs["problems"] = read.problems
    return Configuration(frame, everything, read.files, read.problems, deleted)


def aap_config(
    case: Any, exports: Exports = None, exported_at: str | datetime | pd.Timestamp | None = None
) -> pd.DataFrame:
    """Return every AAP's policies, resources, networks and client keys over time.

    Parameters
    ----------
    case : Case
        The evidence. ActionTrail's successful Create/Update/Delete
        ApplicationAccessPoint, Policy, NetworkRule and Create/DeleteClientKey events
        are applied in time order.
    exports : path or list of paths, optional
        Configuration exports (saved responses of DescribeApplicationAccessPoint,
        DescribePolicy, DescribeNetworkRule, ListClientKeys, ListPolicies). Default: the
        files of the case's evidence that hold no log record.
    exported_at : str or datetime, optional
        When the exports were taken (their responses do not say). Default: the start of
        the evidence, i.e. the exports give the configuration before the events; pass
        the export time when they were taken later.

    Returns
    -------
    pandas.DataFrame
        One row per element and interval: ``account_id``, ``aap``, ``item``
        (``policy``, ``permission``, ``resource``, ``network-rule``, ``network``,
        ``client-key``), ``value``, ``policy`` and ``network_rule`` it comes through,
        ``since``, ``until`` (NaT: still in force at the end of the evidence),
        ``source`` (``actiontrail`` or ``export``) and ``evidence`` (event ids or
        ``file#record``). ``attrs["exports"]`` lists the export files read and
        ``attrs["problems"]`` what could not be read.
    """
    return configuration(case, exports, exported_at).frame


def calls(
    case: Any,
    config: Configuration | None = None,
    grace: str | pd.Timedelta = "5min",
) -> pd.DataFrame:
    """Every AAP call of the KMS log, attributed to its AAP and judged against its policy.

    One row per KMS-log record of an AAP, with ``aap_account``, ``aap``, ``client_key``,
    ``attributed_by``, ``operation``, ``resource``, ``ok``, ``known`` (a configuration
    was in force), ``allowed``, ``policies`` and ``grants`` that allowed it, ``inside``
    (the address is in the network rules; NaN when no rule is known), ``deleted_at`` and
    ``after_deletion`` (later than the client key's deletion plus ``grace``).
    """
    config = config or configuration(case)
    judged = attribute(case.kms, config.frame)
    rows = judge(judged, config.frame, config.deleted_keys, pd.Timedelta(grace))
    rows.attrs["unattributed"] = judged.unattributed
    return rows


def aap_review(
    case: Any,
    exports: Exports = None,
    exported_at: str | datetime | pd.Timestamp | None = None,
    grace: str | pd.Timedelta = "5min",
) -> pd.DataFrame:
    """Compare each AAP's configuration over time with its use in the KMS access log.

    Parameters
    ----------
    case : Case
        The evidence.
    exports, exported_at
        As for :func:`aap_config`.
    grace : str or Timedelta
        How long after ``DeleteClientKey`` a call with that key is still taken as the
        deletion taking effect (the console says changes take up to 5 minutes).

    Returns
    -------
    pandas.DataFrame
        One row per AAP and check: ``use`` (first and last use, calls, client keys),
        ``widened`` (an element an ActionTrail event added: policy resource,
        permission, policy, network, client key; ``evidence``: the events),
        ``allowed-used`` (per policy resource: what it was used for; wildcards to
        narrow), ``allowed-unused`` (least-privilege suggestions), ``used-not-allowed``
        (no policy in force allowed it), ``no-configuration`` (calls no known
        configuration covers), ``inside-network`` and ``outside-network`` (per source
        address), ``used-after-deletion`` (per client key). Columns ``account_id``,
        ``aap``, ``check``, ``policy``, ``resource``, ``operation``, ``client_ip``,
        ``client_key``, ``count``, ``first_seen``, ``last_seen``, ``detail``,
        ``evidence`` (request ids of the calls behind a problem).
        ``attrs["unattributed"]`` counts AAP calls that name no AAP nor a known key.
    """
    config = configuration(case, exports, exported_at)
    rows = calls(case, config, grace)
    frame = review(rows, config.frame)
    frame.attrs["unattributed"] = rows.attrs["unattributed"]
    frame.attrs["exports"] = config.exports
    return frame


def _snapshot_time(case: Any, exported_at: Any) -> pd.Timestamp:
    if exported_at is not None:
        stamp = pd.Timestamp(exported_at)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    first = case.activity["time"].min()
    first = first.compute() if hasattr(first, "compute") else first
    return pd.Timestamp(first) if pd.notna(first) else pd.Timestamp("1970-01-01", tz="UTC")


def _in_memory(frame: Any, keep: Any) -> pd.DataFrame:
    """Return the rows ``keep`` selects, as pandas (computed on the cluster if dask)."""
    if not len(frame.columns) or "eventName" not in frame.columns:
        return pd.DataFrame()
    chosen = frame[keep(frame)]
    return chosen.compute() if hasattr(chosen, "compute") else chosen
