"""Which rows each rule reads, so the dask engine can select them on the cluster.

A selection is decided within one day (the action, the source, success, an error code;
for thresholds, whether a window of that day could reach the threshold), so it can be
evaluated one day at a time on the workers; it covers every row the rule's findings
depend on (a superset is fine), so the rule run on the selected rows alone finds
exactly what it finds on the whole case. D27, which counts every row, gets one row per
stream and bin standing for the others (with their count as ``_weight``) and the last
row of each bin. Rules that
read the data only through first sightings are marked ``first_seen`` instead: each
day is reduced to the first sighting of every (subject, term) pair on the cluster (see
``rules.baseline._first_seen``).

Rules in neither set need every row in memory (data-plane volumes, gaps, chains that
follow one key through all its uses); on the dask engine they are listed in
``attrs["notes"]`` and run on ``case.between(...)`` or ``case.focus(ref)``.

``tests/test_scale.py`` holds the pack to this: the same findings on both engines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ...calls import count_calls
from ..context import Context, flag, is_address, per_value
from ..findings import nanoseconds
from ..registry import RULES, RowSelection
from .baseline import HUMAN, SENSITIVE
from .common import (
    AAP_CHANGES,
    DATA_KEY_OPS,
    KEY_DESTRUCTION,
    KEY_POLICY,
    RAM_CHANGES,
    SECRET_TAMPERING,
    SINK_TAMPERING,
    TRAIL_TAMPERING,
    from_actiontrail,
    from_kms_log,
    role_owner,
)
from .logging import _streams
from .volume import AUTH_ERRORS, _block

Params = dict[str, Any]


def _admin(*operations: str) -> RowSelection:
    def select(ctx: Context, p: Params) -> pd.Series:
        return from_actiontrail(ctx) & ctx.ok & ctx.action_is(*operations)

    return select


#: ActionTrail operations after which D04 and D05 count the failures on the key.
KEY_ADMIN = (*KEY_DESTRUCTION, "DisableKey", "SetDeletionProtection")


def _key_failures(ctx: Context, hours: float) -> pd.Series:
    """KMS-log failures on a key within ``hours`` after a KEY_ADMIN event on it.

    The events come from ``ctx.facts["key_admin"]`` (key_id, time), gathered from the
    whole case first; without them every failure on a key is kept.
    """
    act = ctx.act
    failed = from_kms_log(ctx) & ~ctx.ok & act["key_id"].notna()
    admin = ctx.facts.get("key_admin")
    if admin is None or not failed.any():
        return failed
    rows = pd.DataFrame(
        {"key": _text(ctx, "key_id")[failed].astype(str), "time": act["time"][failed]}
    ).sort_values("time", kind="stable")
    moments = pd.DataFrame(
        {"key": admin["key_id"].astype(object).astype(str), "moment": admin["time"]}
    ).sort_values("moment", kind="stable")
    after = pd.merge_asof(
        rows.reset_index(),
        moments,
        left_on="time",
        right_on="moment",
        by="key",
        allow_exact_matches=False,
        direction="backward",
    )
    near = (after["time"] - after["moment"]) <= pd.Timedelta(hours=hours)
    keep = pd.Series(False, index=act.index)
    keep.loc[after.loc[near.fillna(False).to_numpy(dtype=bool), "index"]] = True
    return keep


def _text(ctx: Context, column: str) -> pd.Series:
    return ctx.act[column].astype(object)


def _dense_windows(
    ctx: Context,
    base: pd.Series,
    keys: list[pd.Series],
    window: str,
    measures: Sequence[tuple[pd.Series | None, float | pd.Series]],
    shifted: bool = True,
    keep_before: pd.Timestamp | None = None,
    whole_rows: bool = False,
) -> pd.Series:
    """Rows of ``base`` whose window could reach a threshold, as far as one day tells.

    Windows are those of :func:`~kmsforensics.detections.findings.over_threshold`
    (tumbling, and shifted by half when ``shifted``). A row is kept when, in this day,
    its group (``keys`` and window) reaches the minimum of a measure (rows when the
    measure is None, else distinct values; a minimum given per row counts at its lowest
    in the group), when its window reaches past the day (kept
    whole, as the other day may complete it), or when it comes before ``keep_before``
    (a baseline). A window reaching a threshold in the whole case is then always whole
    in the selection, and one that does not cannot reach it with fewer rows.

    With ``whole_rows``, every window (of either shift) of a kept row is kept whole:
    for rules whose rows must pass several measures, each in any of their windows,
    where ``measures`` then names one of them that every finding must pass.
    """
    rows = np.flatnonzero(np.asarray(base, dtype=bool))
    keep = np.zeros(len(rows), dtype=bool)
    if len(rows):
        stamps = nanoseconds(ctx.act["time"].iloc[rows])
        day = 86_400 * 10**9
        first, last = stamps.min() // day * day, stamps.min() // day * day + day
        width = pd.Timedelta(window).value
        groups = {f"k{i}": pd.factorize(k.iloc[rows].astype(object))[0] for i, k in enumerate(keys)}
        for shift in (0, width // 2) if shifted else (0,):
            number = (stamps - shift) // width
            frame = pd.DataFrame({**groups, "bin": number})
            grouped = frame.groupby(list(frame.columns), sort=False)
            for values, minimum in measures:
                if values is None:
                    measure = grouped["bin"].transform("size")
                else:
                    codes = pd.factorize(values.iloc[rows].astype(object))[0]
                    measure = (
                        frame.assign(v=np.where(codes >= 0, codes, np.nan))
                        .groupby(list(frame.columns), sort=False)["v"]
                        .transform("nunique")
                    )
                if isinstance(minimum, pd.Series):
                    lowest = (
                        frame.assign(m=minimum.iloc[rows].to_numpy(dtype=float))
                        .groupby(list(frame.columns), sort=False)["m"]
                        .transform("min")
                    )
                    keep |= measure.to_numpy() >= lowest.to_numpy()
                else:
                    keep |= measure.to_numpy() >= minimum
            keep |= (number * width + shift < first) | ((number + 1) * width + shift > last)
        if keep_before is not None:
            keep |= stamps < keep_before.value
        if whole_rows:
            for shift in (0, width // 2) if shifted else (0,):
                frame = pd.DataFrame({**groups, "bin": (stamps - shift) // width, "keep": keep})
                keep = keep | frame.groupby(list(frame.columns[:-1]), sort=False)["keep"].transform(
                    "any"
                ).to_numpy(dtype=bool)
    out = np.zeros(len(base), dtype=bool)
    out[rows[keep]] = True
    return pd.Series(out, index=base.index)


def _reads(ctx: Context) -> tuple[pd.Series, pd.Series]:
    act = ctx.act
    reads = ctx.action_is("GetSecretValue") & ctx.ok & act["secret_name"].notna()
    account = _text(ctx, "account_id")
    secret = (account.astype(str) + "/" + _text(ctx, "secret_name")).where(
        account.notna(),
        "\0",  # D01 counts every read without an account as one secret
    )
    return reads, secret


def _secret_reads_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D01, baseline days: the distinct (principal, window, secret) of reads before it."""
    reads, secret = _reads(ctx)
    reads &= ctx.act["time"] < ctx.baseline_end
    width = pd.Timedelta(p["window"]).value
    return pd.DataFrame(
        {
            "principal": ctx.principal[reads].to_numpy(),
            "bin": nanoseconds(ctx.act["time"][reads]) // width,
            "secret": secret[reads].to_numpy(),
        }
    ).drop_duplicates()


def _secret_reads_usual(days: list[pd.DataFrame], p: Params) -> pd.Series:
    """D01: the most distinct secrets each principal read in one window (as D01 counts)."""
    seen = pd.concat(days, ignore_index=True).drop_duplicates()
    return seen.groupby(["principal", "bin"]).size().groupby(level="principal").max()


def _secret_reads(ctx: Context, p: Params) -> pd.Series:
    """D01: reads in windows that could reach their limit, the baseline, ListSecrets.

    The limit of each row is D01's own (``usual`` learned from the baseline days first),
    or the lowest D01 can use when the baseline is not known.
    """
    reads, secret = _reads(ctx)
    usual = ctx.facts.get("D01")
    limit: float | pd.Series = min(p["threshold"], p["min_distinct"])
    if usual is not None:
        known = ctx.principal.map(usual).astype(float)
        relative = np.maximum(p["min_distinct"], np.floor(p["multiplier"] * known) + 1)
        limit = pd.Series(
            np.where(known.notna(), np.minimum(p["threshold"], relative), p["threshold"]),
            index=ctx.act.index,
        )
    dense = _dense_windows(
        ctx, reads, [ctx.who], p["window"], [(secret, limit)], keep_before=ctx.baseline_end
    )
    return dense | ctx.action_is("ListSecrets")


def _calls(ctx: Context) -> pd.Series:
    return ctx.action_is(*DATA_KEY_OPS) & ctx.act["key_id"].notna()


def _data_key_learn(ctx: Context, p: Params) -> pd.DataFrame:
    """D03, baseline days: calls per principal, key and bin (bins before the window's)."""
    calls = _calls(ctx)
    width = pd.Timedelta(p["bin"]).value
    number = nanoseconds(ctx.act["time"][calls]) // width
    frame = pd.DataFrame(
        {
            "principal": ctx.principal[calls].to_numpy(),
            "key": _text(ctx, "key_id")[calls].to_numpy(),
            "bin": number,
        }
    )
    frame = frame[number < ctx.baseline_end.value // width]
    if "call_id" in ctx.act:  # a call in both logs counts once, as D03 counts
        frame = frame.assign(call_id=ctx.act["call_id"][calls].to_numpy()[frame.index])
    return count_calls(frame, ["principal", "key", "bin"]).rename("n").reset_index()


def _data_key_needed(days: list[pd.DataFrame], p: Params) -> pd.Series:
    """D03: the fewest calls in a bin that can be a burst, per (principal, key)."""
    counts = pd.concat(days, ignore_index=True).groupby(["principal", "key", "bin"])["n"].sum()
    base = counts.groupby(level=["principal", "key"])
    median = base.median()
    mad = base.apply(lambda n: float((n - n.median()).abs().median()))
    robust = np.where(mad > 0, median + p["z"] * 1.4826 * mad - 1e-9, -np.inf)
    needed = np.maximum(np.maximum(p["min_count"], p["multiplier"] * median), robust)
    return pd.Series(needed, index=median.index)


def _data_key_bursts(ctx: Context, p: Params) -> pd.Series:
    """D03: the baseline, and bins busy enough to be a burst of their principal and key.

    How busy comes from the baseline learned first (``min_count``, ``multiplier`` times
    the median, the robust z-score); a principal and key without one cannot burst.
    """
    act = ctx.act
    width = pd.Timedelta(p["bin"]).value
    baseline = pd.Timestamp((ctx.baseline_end.value // width + 1) * width, tz="UTC")
    needed: float | pd.Series = p["min_count"]
    learned = ctx.facts.get("D03")
    if learned is not None:
        pairs = pd.MultiIndex.from_arrays(
            [ctx.principal.to_numpy(), _text(ctx, "key_id").to_numpy()]
        )
        needed = pd.Series(learned.reindex(pairs).fillna(np.inf).to_numpy(), index=act.index)
    return _dense_windows(
        ctx,
        _calls(ctx),
        [ctx.principal, act["key_id"]],
        p["bin"],
        [(None, needed)],
        shifted=False,
        keep_before=baseline,
    )


def _spread_keys(ctx: Context, p: Params) -> pd.Series:
    """D13: uses of a credential in windows over ``min_networks`` networks, whole."""
    act = ctx.act
    used = act["access_key_id"].notna() & is_address(act["client_ip"])
    ips = act["client_ip"]
    if ctx.geo is not None:
        nets = ctx.geo.lookup(ips.astype(object))["asn"]
        nets.index = act.index
    else:
        nets = per_value(ips, _block)
    spread = [(nets, p["min_networks"])]  # every finding is spread over networks
    return _dense_windows(ctx, used, [ctx.credential], p["window"], spread, whole_rows=True)


def _stream_bins(ctx: Context, p: Params) -> pd.Series:
    """D27: the first and last row of each stream and bin; the first stands for the bin."""
    codes, _ = _streams(ctx)
    width = pd.Timedelta(p["bin"]).value
    frame = pd.DataFrame({"stream": codes, "bin": nanoseconds(ctx.act["time"]) // width})
    frame = frame[frame["stream"] >= 0]
    grouped = frame.groupby(["stream", "bin"], sort=False)
    weights = pd.Series(np.nan, index=ctx.act.index)
    weights.loc[grouped.tail(1).index] = 0.0
    firsts = grouped.head(1).index
    weights.loc[firsts] = grouped["bin"].transform("size").loc[firsts].astype(float)
    return weights


def _aap_failures(ctx: Context, p: Params) -> pd.Series:
    act = ctx.act
    aap = _text(ctx, "identity_type") == "aap"
    missing = act["account_id"].isna() | act["principal_id"].isna()
    kaap = flag(act["access_key_id"], lambda k: str(k).startswith("KAAP."))
    return from_kms_log(ctx) & ((aap & missing) | (kaap & ctx.status_code.isin([401, 403])))


def _denied(ctx: Context, p: Params) -> pd.Series:
    pattern = re.compile(AUTH_ERRORS)
    at = from_actiontrail(ctx) & flag(ctx.act["error_code"], lambda c: pattern.match(str(c)))
    return at | (from_kms_log(ctx) & ctx.status_code.isin([401, 403]))


def _enumeration(ctx: Context, p: Params) -> pd.Series:
    return (
        from_actiontrail(ctx)
        & ctx.action_matches(r"^(List|Describe|Get)")
        & (ctx.act["action"] != "GetSecretValue")
        & (_text(ctx, "event_type") != "ConsoleOperation")
        & (_text(ctx, "identity_type") != "system")
    )


def _assume(ctx: Context) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_matches("AssumeRole")


def _cross_account(ctx: Context, p: Params) -> pd.Series:
    """D19: assumptions of another account's role, foreign players, earlier assumptions."""
    act = ctx.act
    caller = _text(ctx, "account_id")
    owner = role_owner(act["role_arn"])
    player = _text(ctx, "player_account_id")
    foreign = owner.notna() & (owner != caller)
    played = from_actiontrail(ctx) & player.notna() & (player != caller)
    return (_assume(ctx) & (foreign | (act["time"] < ctx.baseline_end))) | played


def _chained(ctx: Context, p: Params) -> pd.Series:
    """D20: assumptions by a role session."""
    return _assume(ctx) & (_text(ctx, "identity_type") == "ram-role")


def _signins(ctx: Context, p: Params) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_is("ConsoleSignin")


def _root(ctx: Context, p: Params) -> pd.Series:
    return _text(ctx, "identity_type") == "account"


def _people(ctx: Context, p: Params) -> pd.Series:
    """D24: people's baseline, and their sensitive calls."""
    sensitive = ctx.action_is(*SENSITIVE) | (ctx.act["time"] < ctx.baseline_end)
    return _text(ctx, "identity_type").isin(HUMAN) & sensitive


def _logging(ctx: Context, p: Params) -> pd.Series:
    return _admin(*TRAIL_TAMPERING, *SINK_TAMPERING)(ctx, p)


def _ram(ctx: Context, p: Params) -> pd.Series:
    return _admin(*RAM_CHANGES)(ctx, p) & (_text(ctx, "service") == "ram")


def _destruction(ctx: Context, p: Params) -> pd.Series:
    return _admin(*KEY_DESTRUCTION)(ctx, p) | _key_failures(ctx, p["impact_hours"])


def _disabling(ctx: Context, p: Params) -> pd.Series:
    disabling = _admin("DisableKey", "SetDeletionProtection")(ctx, p)
    return disabling | _key_failures(ctx, p["impact_hours"])


def _caller_checks(ctx: Context, p: Params) -> pd.Series:
    return ctx.action_is("GetCallerIdentity") & ctx.ok


SELECTIONS: dict[str, RowSelection] = {
    "D01": _secret_reads,
    "D03": _data_key_bursts,
    "D04": _destruction,
    "D05": _disabling,
    "D06": _admin("GetParametersForImport", "ImportKeyMaterial", "CreateKey"),
    "D07": _admin(*KEY_POLICY),
    "D08": _admin(*AAP_CHANGES),
    "D10": _admin(*SECRET_TAMPERING),
    "D13": _spread_keys,
    "D15": _aap_failures,
    "D16": _denied,
    "D17": _enumeration,
    "D18": _caller_checks,
    "D19": _cross_account,
    "D20": _chained,
    "D21": _signins,
    "D22": _signins,
    "D23": _root,
    "D24": _people,
    "D26": _logging,
    "D28": _ram,
}
WEIGHTS: dict[str, RowSelection] = {"D27": _stream_bins}
#: What a rule learns from the baseline days before its rows are selected: a function
#: run on each baseline day, and one that combines the days into ``ctx.facts[rule]``.
LEARNS: dict[str, tuple[Any, Any]] = {
    "D01": (_secret_reads_learn, _secret_reads_usual),
    "D03": (_data_key_learn, _data_key_needed),
}
FIRST_SEEN = ("D02", "D11", "D12", "D25")

for _rule_id, _selection in SELECTIONS.items():
    RULES[_rule_id] = replace(RULES[_rule_id], selects=_selection)
for _rule_id, _weights in WEIGHTS.items():
    RULES[_rule_id] = replace(RULES[_rule_id], weighs=_weights)
for _rule_id, _learns in LEARNS.items():
    RULES[_rule_id] = replace(RULES[_rule_id], learns=_learns)
for _rule_id in FIRST_SEEN:
    RULES[_rule_id] = replace(RULES[_rule_id], first_seen=True)
