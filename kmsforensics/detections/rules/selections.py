"""Which rows each rule reads, so the dask engine can select them on the cluster.

A selection is decided row by row (the action, the source, success, an error code),
never from other rows, so it can be evaluated one day at a time on the workers; it
covers every row the rule's own masks can take (a superset is fine), so the rule run on
the selected rows alone finds exactly what it finds on the whole case. Rules that
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
from dataclasses import replace

import pandas as pd

from ..context import Context, flag
from ..registry import RULES, RowSelection
from .baseline import HUMAN
from .common import (
    AAP_CHANGES,
    KEY_DESTRUCTION,
    KEY_POLICY,
    RAM_CHANGES,
    SECRET_TAMPERING,
    SINK_TAMPERING,
    TRAIL_TAMPERING,
    from_actiontrail,
    from_kms_log,
)
from .volume import AUTH_ERRORS


def _admin(*operations: str) -> RowSelection:
    def select(ctx: Context) -> pd.Series:
        return from_actiontrail(ctx) & ctx.ok & ctx.action_is(*operations)

    return select


def _key_failures(ctx: Context) -> pd.Series:
    """KMS-log failures on a key (the impact D04 and D05 count)."""
    return from_kms_log(ctx) & ~ctx.ok & ctx.act["key_id"].notna()


def _text(ctx: Context, column: str) -> pd.Series:
    return ctx.act[column].astype(object)


def _secret_reads(ctx: Context) -> pd.Series:
    reads = ctx.action_is("GetSecretValue") & ctx.ok & ctx.act["secret_name"].notna()
    return reads | ctx.action_is("ListSecrets")


def _aap_failures(ctx: Context) -> pd.Series:
    act = ctx.act
    aap = _text(ctx, "identity_type") == "aap"
    missing = act["account_id"].isna() | act["principal_id"].isna()
    kaap = flag(act["access_key_id"], lambda k: str(k).startswith("KAAP."))
    return from_kms_log(ctx) & ((aap & missing) | (kaap & ctx.status_code.isin([401, 403])))


def _denied(ctx: Context) -> pd.Series:
    pattern = re.compile(AUTH_ERRORS)
    at = from_actiontrail(ctx) & flag(ctx.act["error_code"], lambda c: pattern.match(str(c)))
    return at | (from_kms_log(ctx) & ctx.status_code.isin([401, 403]))


def _enumeration(ctx: Context) -> pd.Series:
    return (
        from_actiontrail(ctx)
        & ctx.action_matches(r"^(List|Describe|Get)")
        & (ctx.act["action"] != "GetSecretValue")
        & (_text(ctx, "event_type") != "ConsoleOperation")
        & (_text(ctx, "identity_type") != "system")
    )


def _assumptions(ctx: Context) -> pd.Series:
    played = from_actiontrail(ctx) & ctx.act["player_account_id"].notna()
    return (from_actiontrail(ctx) & ctx.action_matches("AssumeRole")) | played


def _signins(ctx: Context) -> pd.Series:
    return from_actiontrail(ctx) & ctx.action_is("ConsoleSignin")


def _root(ctx: Context) -> pd.Series:
    return _text(ctx, "identity_type") == "account"


def _people(ctx: Context) -> pd.Series:
    return _text(ctx, "identity_type").isin(HUMAN)


def _logging(ctx: Context) -> pd.Series:
    return _admin(*TRAIL_TAMPERING, *SINK_TAMPERING)(ctx)


def _ram(ctx: Context) -> pd.Series:
    return _admin(*RAM_CHANGES)(ctx) & (_text(ctx, "service") == "ram")


SELECTIONS: dict[str, RowSelection] = {
    "D01": _secret_reads,
    "D04": lambda ctx: _admin(*KEY_DESTRUCTION)(ctx) | _key_failures(ctx),
    "D05": lambda ctx: _admin("DisableKey", "SetDeletionProtection")(ctx) | _key_failures(ctx),
    "D06": _admin("GetParametersForImport", "ImportKeyMaterial", "CreateKey"),
    "D07": _admin(*KEY_POLICY),
    "D08": _admin(*AAP_CHANGES),
    "D10": _admin(*SECRET_TAMPERING),
    "D15": _aap_failures,
    "D16": _denied,
    "D17": _enumeration,
    "D18": lambda ctx: ctx.action_is("GetCallerIdentity") & ctx.ok,
    "D19": _assumptions,
    "D20": _assumptions,
    "D21": _signins,
    "D22": _signins,
    "D23": _root,
    "D24": _people,
    "D26": _logging,
    "D28": _ram,
}
FIRST_SEEN = ("D02", "D11", "D12", "D25")

for _rule_id, _selection in SELECTIONS.items():
    RULES[_rule_id] = replace(RULES[_rule_id], selects=_selection)
for _rule_id in FIRST_SEEN:
    RULES[_rule_id] = replace(RULES[_rule_id], first_seen=True)
