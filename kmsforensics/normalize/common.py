"""Pieces both normalisers share: reporting unreadable values, rejecting rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..issues import IssueLog

#: Field issues kept per file and field; beyond it, one summary note.
MAX_FIELD_ISSUES = 10_000


def report_bad_values(
    table: pa.Table, bad: pa.Array, field: str, reason: str, issues: IssueLog
) -> None:
    """Add a ``field`` issue for each row where ``bad`` is true (value shown in excerpt)."""
    if not pc.any(bad).as_py():
        return
    rows = table.filter(bad).select(["source_file", "source_record", field]).to_pylist()
    per_file: dict[str, int] = {}
    for row in rows:
        name = row["source_file"]
        per_file[name] = per_file.get(name, 0) + 1
        if per_file[name] <= MAX_FIELD_ISSUES:
            issues.add(name, row["source_record"], "field", field, reason, str(row[field]))
    for name, count in per_file.items():
        if count > MAX_FIELD_ISSUES:
            issues.add(
                name,
                None,
                "note",
                field,
                f"{count - MAX_FIELD_ISSUES:,} more rows in this file: {reason}",
            )


def reject_rows(
    table: pa.Table, reject: pa.Array, reason: str, issues: IssueLog, raw_field: str
) -> pa.Table:
    """Report the rows where ``reject`` is true as not loaded, and drop them."""
    reject = pc.fill_null(reject, False)
    if pc.any(reject).as_py():
        for row in (
            table.filter(reject).select(["source_file", "source_record", raw_field]).to_pylist()
        ):
            issues.add(
                row["source_file"],
                row["source_record"],
                "record",
                raw_field,
                reason,
                str(row[raw_field]) if row[raw_field] is not None else "",
            )
        table = table.filter(pc.invert(reject))
    return table


def note_zoneless(
    table: pa.Table, zoneless: pa.Array, field: str, issues: IssueLog, assume_timezone: str | None
) -> None:
    """Add one note per file saying how many times had no zone and how they were read."""
    if not pc.any(zoneless).as_py():
        return
    files = pc.value_counts(table.filter(zoneless).column("source_file").combine_chunks())
    zone = assume_timezone or "UTC"
    advice = (
        ""
        if assume_timezone
        else "; if they are local times (a console export, for example), load with "
        "kf.load(..., assume_timezone='Asia/Shanghai') or the zone they were written in"
    )
    for row in files.to_pylist():
        issues.add(
            str(row["values"]),
            None,
            "note",
            field,
            f"{row['counts']:,} {field} values have no time zone; read as {zone}{advice}",
        )


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    """Replace or append a column."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)
