"""The rule registry: every rule is one object, defined in one place.

A rule is a function ``rule(ctx, p) -> DataFrame`` that labels the activity rows behind
each incident it finds (see :mod:`kmsforensics.detections.findings`). The :func:`rule`
decorator turns it into a :class:`Rule` registered under its catalogue id (``"D01"``
...) with a title, a severity, an ATT&CK technique, its kind and its parameters: a
frozen dataclass of :class:`Params` per rule, with defaults and validation. How the
rule runs on the dask engine is attached beside it by decorators on the rule object
(:meth:`Rule.selects`, :meth:`Rule.weighs`, :meth:`Rule.learns`); first-seen rules
declare :class:`~kmsforensics.detections.newterms.NewTerm` specs that the engine runs.

Examples
--------
>>> from kmsforensics.detections.registry import RULES
>>> RULES["D04"].technique
'T1485'
>>> sorted(RULES["D01"].params)[:4]
['horizon_days', 'long_multiplier', 'long_threshold', 'min_distinct']
>>> RULES["D01"].resolve({"threshold": 10}).threshold
10
>>> try:
...     RULES["D01"].resolve({"window": "ten minutes"})
... except UnknownRuleError as error:
...     print(error)
D01: window must be a duration such as '10min', not 'ten minutes'
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pandas as pd

from ..errors import UnknownRuleError

if TYPE_CHECKING:
    from .context import Context
    from .newterms import NewTerm

#: Severities, lowest first.
SEVERITIES = ("low", "medium", "high", "critical")

RuleFunction = Callable[["Context", Any], pd.DataFrame]
RowSelection = Callable[["Context", Any], pd.Series]
#: How a rule runs on the dask engine (``Rule.on_dask``).
ON_DASK = {
    "select": "rows selected on the cluster",
    "first-seen": "first sightings reduced on the cluster",
    "memory": "needs every row in memory: run it on case.between(...) or case.focus(ref)",
}
#: Whether a rule needs a geo database: not at all, for part of it, or to run at all.
GeoNeed = Literal["", "partial", "required"]


def duration(default: str) -> Any:
    """Return a dataclass field holding a duration (``"10min"``, ``"6h"``), checked as one."""
    return field(default=default, metadata={"duration": True})


@dataclass(frozen=True)
class Params:
    """A rule's parameters: subclass it as a frozen dataclass with typed defaults.

    Values are checked when made: numbers are numbers and not negative, flags are
    booleans, durations parse (:func:`duration`). ``p["name"]`` reads a value too.
    """

    rule_id: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            _check(self.rule_id, item.name, value, hints.get(item.name), item.metadata)

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def as_dict(self) -> dict[str, Any]:
        """Return the values by name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _check(rule_id: str, name: str, value: Any, kind: Any, metadata: Mapping[str, Any]) -> None:
    where = f"{rule_id}: {name}"
    if metadata.get("duration"):
        try:
            ok = pd.Timedelta(str(value)) > pd.Timedelta(0)
        except ValueError:
            ok = False
        if not ok:
            raise UnknownRuleError(f"{where} must be a duration such as '10min', not {value!r}")
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise UnknownRuleError(f"{where} must be True or False, not {value!r}")
        return
    if kind in (int, float):
        allowed = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise UnknownRuleError(f"{where} must be a {kind.__name__}, not {value!r}")
        if value < 0:
            raise UnknownRuleError(f"{where} must not be negative, not {value!r}")


@dataclass(frozen=True)
class NoParams(Params):
    """The parameters of a rule that has none."""


@dataclass
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
    function : callable
        ``function(ctx, params) -> labelled rows``; for a first-seen rule,
        ``function(found, params)`` finishing what its new-term specs found.
    parameters : type
        Its :class:`Params` dataclass.
    needs_geo : str
        ``""``, ``"partial"`` (part of it uses a geo database when given) or
        ``"required"`` (skipped without one).
    selects : callable or None
        ``selects(ctx, params) -> mask``: every row the rule needs, decided within one
        day, so the dask engine can select them day by day on the cluster and run the
        rule on them alone (results identical to the whole case).
    weighs : callable or None
        ``weighs(ctx, params) -> counts``: for rules that count rows, the rows that
        stand for the others (NaN elsewhere) and how many each stands for; the rule
        reads them as the ``_weight`` column.
    learned : (callable, callable) or None
        ``(on_day(ctx, params) -> frame, combine(frames, params) -> facts)``: what the
        selection learns from the baseline days first (``ctx.facts[rule_id]``).
    new_terms : tuple of NewTerm
        The first-seen specs of the rule; the engine finds their first sightings (on
        the dask engine, reduced day by day on the cluster).
    gathered : (callable, callable) or None
        Like ``learned``, over every day: the few facts a selection needs from the
        whole case (the client keys created, the control-plane changes).
    """

    rule_id: str
    title: str
    severity: str
    technique: str
    kind: str
    sources: tuple[str, ...]
    function: Callable[..., pd.DataFrame]
    parameters: type[Params] = NoParams
    needs_geo: GeoNeed = ""
    selects: RowSelection | None = None
    weighs: RowSelection | None = None
    learned: tuple[Any, Any] | None = None
    new_terms: tuple[NewTerm, ...] = ()
    gathered: tuple[Any, Any] | None = None

    def __call__(self, ctx: Context, params: Any) -> pd.DataFrame:
        """Run the rule on a context (first-seen rules run their specs first)."""
        if self.new_terms:
            from .newterms import run_specs

            return self.function(run_specs(ctx, self, params), params)
        return self.function(ctx, params)

    @property
    def params(self) -> dict[str, Any]:
        """Parameters and their defaults."""
        return self.parameters().as_dict()

    @property
    def first_seen(self) -> bool:
        """The rule reads the data only through first sightings (new-term specs)."""
        return bool(self.new_terms)

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

    def resolve(self, overrides: Mapping[str, Any] | None) -> Params:
        """Merge analyst overrides into the defaults; an unknown name or bad value is an error."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise UnknownRuleError(
                f"{self.rule_id} has no parameter {', '.join(map(repr, unknown))}; "
                f"its parameters are {', '.join(sorted(self.params)) or 'none'}"
            )
        return self.parameters(**overrides)

    # -- the dask facet, attached beside the rule ------------------------------------------

    def select(self, function: RowSelection) -> RowSelection:
        """Decorate the function that selects this rule's rows day by day (dask)."""
        self.selects = function
        return function

    def weigh(self, function: RowSelection) -> RowSelection:
        """Decorate the function that picks rows standing for others, with counts (dask)."""
        self.weighs = function
        return function

    def gather(self, combine: Callable[[list[Any], Any], Any]) -> Callable[[Any], Any]:
        """Decorate what the selection gathers from every day first; ``combine`` merges."""

        def attach(on_day: Any) -> Any:
            self.gathered = (on_day, combine)
            return on_day

        return attach

    def learn(self, combine: Callable[[list[Any], Any], Any]) -> Callable[[Any], Any]:
        """Decorate what the selection learns from each baseline day; ``combine`` merges."""

        def attach(on_day: Any) -> Any:
            self.learned = (on_day, combine)
            return on_day

        return attach


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str,
    title: str,
    *,
    severity: str,
    technique: str,
    kind: str,
    sources: tuple[str, ...],
    params: type[Params] = NoParams,
    needs_geo: GeoNeed = "",
    new_terms: Sequence[NewTerm] = (),
) -> Callable[[Callable[..., pd.DataFrame]], Rule]:
    """Register a rule function under its catalogue id (a decorator returning the Rule)."""
    if severity not in SEVERITIES:
        raise ValueError(f"{rule_id}: severity must be one of {SEVERITIES}")

    def register(function: Callable[..., pd.DataFrame]) -> Rule:
        if rule_id in RULES:
            raise ValueError(f"{rule_id} is registered twice")
        if params is not NoParams:
            params.rule_id = rule_id
        made = Rule(
            rule_id,
            title,
            severity,
            technique,
            kind,
            sources,
            function,
            params,
            needs_geo,
            new_terms=tuple(new_terms),
        )
        RULES[rule_id] = made
        return made

    return register


def select(rules: str | list[str] | None) -> list[Rule]:
    """Return the rules named (all when ``None``), in catalogue order."""
    if rules is None:
        return [RULES[r] for r in sorted(RULES)]
    names = [rules] if isinstance(rules, str) else list(rules)
    unknown = [r for r in names if r not in RULES]
    if unknown:
        raise UnknownRuleError(
            f"no rule {', '.join(map(repr, unknown))}; kf.list_rules() lists them "
            f"({', '.join(sorted(RULES))})"
        )
    return [RULES[r] for r in sorted(set(names))]
