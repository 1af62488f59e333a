"""Collect what could not be taken as is: the rows of ``case.issues``.

With ``strict=True`` the collector raises :class:`~kmsforensics.errors.LogParseError`
on the first record- or field-level problem instead of recording it.

Examples
--------
>>> log = IssueLog(strict=False)
>>> log.add("a.json", 3, "record", None, "invalid JSON", b'{"eventId": ')
>>> log.frame()[["source_file", "source_record", "severity", "reason"]].to_dict("records")
[{'source_file': 'a.json', 'source_record': 3, 'severity': 'record', 'reason': 'invalid JSON'}]
"""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd

from .errors import LogParseError
from .schema import ISSUE_SEVERITIES, ISSUES_COLUMNS

#: How many characters of the offending record an issue row keeps.
EXCERPT_CHARS = 200
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def excerpt(raw: str | bytes | None, limit: int = EXCERPT_CHARS) -> str:
    r"""Return a short, printable excerpt of a raw record.

    Control characters are escaped so that an excerpt can never rewrite a terminal
    or break a table; nothing in it is interpreted.

    Examples
    --------
    >>> excerpt(b'{"a":\x1b[31m1}')
    '{"a":\\x1b[31m1}'
    >>> excerpt("中文")
    '中文'
    >>> len(excerpt("x" * 1000))
    201
    """
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _error(source_file: str, record: int | None, field: str | None, reason: str) -> LogParseError:
    what = f"field {field!r}: {reason}" if field else reason
    return LogParseError(source_file, record, what)


class IssueLog:
    """Accumulates issue rows during a load; raises on the first one when strict."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._rows: list[tuple[str, int | None, str, str | None, str, str]] = []

    def add(
        self,
        source_file: str,
        source_record: int | None,
        severity: str,
        field: str | None,
        reason: str,
        raw: str | bytes | None = None,
    ) -> None:
        """Record one problem (or raise it, in strict mode, unless it is a note)."""
        if severity not in ISSUE_SEVERITIES:
            raise ValueError(f"unknown issue severity {severity!r}")
        if self.strict and severity != "note":
            raise _error(source_file, source_record, field, reason)
        self._rows.append((source_file, source_record, severity, field, reason, excerpt(raw)))

    def raise_first_problem(self, order: dict[str, int]) -> None:
        """Raise :class:`~kmsforensics.errors.LogParseError` for the first problem, if any.

        "First" is in file order (``order`` ranks the files), then record order: a
        strict load collects a batch of files without raising, then calls this, so
        it stops at the same record as a load that read the files one by one.

        Examples
        --------
        >>> log = IssueLog()
        >>> log.add("b.json", 1, "record", None, "invalid JSON")
        >>> log.add("a.json", 7, "field", "time", "not a time")
        >>> log.raise_first_problem({"a.json": 0, "b.json": 1})
        Traceback (most recent call last):
        ...
        kmsforensics.errors.LogParseError: a.json, record 7: field 'time': not a time (...)
        """
        problems = [row for row in self._rows if row[2] != "note"]
        if not problems:
            return
        first = min(
            problems,
            key=lambda r: (order.get(r[0], len(order)), -1 if r[1] is None else r[1]),
        )
        raise _error(first[0], first[1], first[3], first[4])

    def extend(self, other: IssueLog) -> None:
        """Append the rows of another collector."""
        self._rows.extend(other._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def rejected_by_file(self) -> Counter[str]:
        """Count record-level issues (records not loaded) per file."""
        return Counter(row[0] for row in self._rows if row[2] == "record")

    def counts(self) -> Counter[str]:
        """Count issue rows by severity."""
        return Counter(row[2] for row in self._rows)

    def frame(self) -> pd.DataFrame:
        """Return the issues as a DataFrame with the columns of ``case.issues``."""
        frame = pd.DataFrame(self._rows, columns=list(ISSUES_COLUMNS))
        frame["source_record"] = frame["source_record"].astype("Int64")
        frame["severity"] = pd.Categorical(frame["severity"], categories=ISSUE_SEVERITIES)
        return frame
