"""The rule registry: every rule with its catalogue id, metadata and parameters.

A rule is a plain function ``rule(ctx, p) -> DataFrame`` that labels the activity rows
behind each incident it finds (see :mod:`kmsforensics.detections.findings`). The
:func:`rule` decorator records it under its catalogue id (``"D01"`` ...) with a title,
a severity, an ATT&CK technique, its kind and its parameters with their defaults.

Examples
--------
>>> from kmsforensics.detections.registry import RULES
>>> RULES["D04"].technique
'T1485'
>>> sorted(RULES["D01"].params)
['min_distinct', 'multiplier', 'threshold', 'window']
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import UnknownRuleError

if TYPE_CHECKING:
    from .context import Context

#: Severities, lowest first.
SEVERITIES = ("low", "medium", "high", "critical")

RuleFunction = Callable[["Context", dict[str, Any]], pd.DataFrame]
RowSelection = Callable[["Context", dict[str, Any]], pd.Series]
#: How a rule runs on the dask engine (``Rule.on_dask``).
ON_DASK = {
    "select": "rows selected on the cluster",
    "first-seen": "first sightings reduced on the cluster",
    "memory": "needs every row in memory: run it on case.between(...) or case.focus(ref)",
}


@dataclass(frozen=True)
class Rule:
    """One detection of the catalogue.

    Attributes
    ----------
    rule_id : str
        The catalogue id, ``"D01"`` ... ``"D30"``.
    title, severity, technique, kind : str
        What it detects, its default severity, the ATT&CK technique(s), and its type
        (``single-event``, ``threshold``, ``baseline``, ``correlation``, ``graph``,
        ``gap``).
    sources : tuple of str
        The logs it reads (``kms``, ``actiontrail``).
    params : dict
        Parameters and their defaults.
    function : callable
        ``function(ctx, params) -> labelled rows``.
    needs_geo : bool
        True when the rule needs (all or part) a geo/ASN database.
    selects : callable or None
        ``selects(ctx, params) -> mask``: every row the rule needs, decided within one
        day, so the dask engine can select them day by day on the cluster and run the
        rule on them alone (results identical to the whole case). Set in
        :mod:`kmsforensics.detections.rules.selections`.
    weighs : callable or None
        ``weighs(ctx, params) -> counts``: for rules that count rows, the rows that
        stand for the others (NaN elsewhere) and how many each stands for; the rule
        reads them as the ``_weight`` column.
    learns : (callable, callable) or None
        ``(on_day(ctx, params) -> frame, combine(frames, params) -> facts)``: what the
        selection learns from the baseline days first (``ctx.facts[rule_id]``).
    first_seen : bool
        The rule reads the data only through first sightings (``_first_seen``), which
        the dask engine reduces day by day on the cluster.
    """

    rule_id: str
    title: str
    severity: str
    technique: str
    kind: str
    sources: tuple[str, ...]
    function: RuleFunction
    params: dict[str, Any] = field(default_factory=dict)
    needs_geo: bool = False
    selects: RowSelection | None = None
    weighs: RowSelection | None = None
    learns: tuple[Any, Any] | None = None
    first_seen: bool = False

    @property
    def on_dask(self) -> str:
        """How the rule runs on the dask engine: ``select``, ``first-seen`` or ``memory``."""
        if self.first_seen:
            return "first-seen"
        chosen = self.selects is not None or self.weighs is not None
        return "select" if chosen else "memory"

    @property
    def doc(self) -> str:
        """The rule's docstring, dedented."""
        return inspect.cleandoc(self.function.__doc__ or "")

    def section(self, name: str) -> str:
        """Return one section of the docstring (``Reads``, ``False positives`` ...)."""
        match = re.search(rf"^{name}\n-+\n(.*?)(?:\n\n\S[^\n]*\n-+\n|\Z)", self.doc, re.S | re.M)
        return " ".join(match.group(1).split()) if match else ""

    def resolve(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        """Merge analyst overrides into the defaults; an unknown name is an error."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise UnknownRuleError(
                f"{self.rule_id} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(sorted(self.params)) or 'none'}"
            )
        return {**self.params, **overrides}


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    title: str,
    *,
    severity: str,
    technique: str,
    kind: str,
    sources: tuple[str, ...],
    needs_geo: bool = False,
    **params: Any,
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under its catalogue id (a decorator)."""
    if severity not in SEVERITIES:
        raise ValueError(f"{rule_id}: severity must be one of {SEVERITIES}")

    def register(function: RuleFunction) -> RuleFunction:
        if rule_id in RULES:
            raise ValueError(f"{rule_id} is registered twice")
        RULES[rule_id] = Rule(
            rule_id,
            title,
            severity,
            technique,
            kind,
            sources,
            function,
            params,
            needs_geo,
        )
        return function

    return register


def select(rules: str | list[str] | None) -> list[Rule]:
    """Return the rules named (all when ``None``), in catalogue order."""
    if rules is None:
        return [RULES[r] for r in sorted(RULES)]
    names = [rules] if isinstance(rules, str) else list(rules)
    unknown = [r for r in names if r not in RULES]
    if unknown:
        raise UnknownRuleError(
            f"no rule {', '.join(map(repr, unknown))}; kf.rules() lists them "
            f"({', '.join(sorted(RULES))})"
        )
    return [RULES[r] for r in sorted(set(names))]
