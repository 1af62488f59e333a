"""Every exception and warning raised by kmsforensics, in one place.

The tree (each error also derives from the built-in exception in brackets, so
``except ValueError`` and ``except FileNotFoundError`` keep working in code that
does not know this package)::

    KmsForensicsError
    ├── EvidenceNotFoundError ......... [FileNotFoundError] a source names no file
    ├── UnreadableEvidenceError ....... [OSError] a FIFO, a broken link, a bad member
    ├── LogParseError ................. [ValueError] a bad record, with strict=True
    ├── UnknownFormatError ............ [ValueError] not a log, with strict=True
    ├── UnsafeArchiveError ............ [ValueError] an archive cannot be read safely
    │   └── DecompressionLimitError ... a file expands past max_bytes
    ├── StoreError .................... [ValueError] a case store cannot be used
    │   ├── StoreLockedError .......... another ingest is writing it (names the holder)
    │   └── StoreIntegrityError ....... a file missing, changed or unreadable; a damaged store
    ├── DatasetNotFoundError .......... [FileNotFoundError] no curated dataset here
    ├── TemplateNotFoundError ......... [FileNotFoundError] no such report template
    ├── ReportParameterError .......... [ValueError] a report parameter unknown or bad
    ├── ReportError ................... [RuntimeError] the report template failed
    ├── TriageError ................... [ValueError] a triage record unreadable or misused
    ├── TimezoneError ................. [ValueError] not an IANA time zone
    ├── NoEvidenceError ............... [FileNotFoundError] the sources hold no log
    ├── UnknownRuleError .............. [KeyError] no such rule or rule parameter
    ├── UnknownReferenceError ......... [KeyError] an identifier names no graph node
    └── AmbiguousReferenceError ....... [LookupError] it names several nodes

    UserWarning
    ├── ParseWarning .................. records or files rejected or skipped
    └── DetectionNote ................. a rule skipped on this run, and why

Each error names what it is about (the file and record, the store, the rule) and
says what to do. The classes are also importable from the modules that raise
them (``kmsforensics.store.StoreError``...), where they used to live.

Examples
--------
>>> import kmsforensics as kf
>>> issubclass(kf.LogParseError, ValueError)
True
>>> issubclass(kf.EvidenceNotFoundError, FileNotFoundError)
True
>>> issubclass(kf.StoreError, kf.KmsForensicsError)
True
"""

from __future__ import annotations

from collections.abc import Sequence


class KmsForensicsError(Exception):
    """Root of every error raised by kmsforensics."""


class EvidenceNotFoundError(KmsForensicsError, FileNotFoundError):
    """A path, folder or glob given to :func:`kmsforensics.load` names no file."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(
            f"evidence not found: {source!r} is not a file, a folder or a glob that matches "
            "any file; check the path (it is relative to the current directory "
            "unless it is absolute)"
        )


class LogParseError(KmsForensicsError, ValueError):
    """A record (or a field of it) could not be read, with ``strict=True``.

    Attributes
    ----------
    path : str
        The evidence file (``archive.zip::member`` for a member of a zip archive).
    record : int or None
        Line number (1-based) for line-oriented files and CSV, element index
        (0-based) for JSON arrays; ``None`` when the problem concerns the whole file.
    reason : str
        What is wrong.
    """

    def __init__(self, path: str, record: int | None, reason: str) -> None:
        self.path = path
        self.record = record
        self.reason = reason
        where = f"{path}, record {record}" if record is not None else path
        super().__init__(
            f"{where}: {reason} (load with strict=False to keep the other records and "
            "see every problem in case.issues)"
        )


class UnknownFormatError(KmsForensicsError, ValueError):
    """A file is not a log format kmsforensics reads, with ``strict=True``."""

    def __init__(self, path: str, reason: str, formats_tried: Sequence[str]) -> None:
        self.path = path
        self.reason = reason
        self.formats_tried = tuple(formats_tried)
        super().__init__(
            f"{path}: not a supported log ({reason}); formats tried: "
            f"{', '.join(self.formats_tried)}. Remove it from the sources, or load with "
            "strict=False to list it in case.manifest as skipped"
        )


class UnreadableEvidenceError(KmsForensicsError, OSError):
    """An evidence file cannot be read: not a regular file, or a damaged archive member.

    Raised with ``strict=True``; otherwise the file is listed in ``case.manifest``
    as skipped, with the same reason.

    Attributes
    ----------
    path : str
        The evidence file (``archive.zip::member`` for a member of a zip archive).
    reason : str
        Why it is not read.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            f"{path}: {reason}. Remove it from the sources, or load with strict=False "
            "to list it in case.manifest as skipped"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class UnsafeArchiveError(KmsForensicsError, ValueError):
    """An archive cannot be read safely (for example, a member escapes the archive)."""


class DecompressionLimitError(UnsafeArchiveError):
    """A compressed file expands beyond the configured bound (``max_bytes``)."""

    def __init__(self, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        super().__init__(
            f"{path}: decompressed content exceeds {limit:,} bytes; it may be a "
            "decompression bomb. If the file is genuine, load it with a larger bound, "
            f"e.g. kf.load(..., max_bytes={limit * 4})"
        )


class StoreError(KmsForensicsError, ValueError):
    """A case store that cannot be opened or written (names the folder and what to do)."""


class StoreLockedError(StoreError):
    """Another ingest is writing to the case store (only one writer at a time).

    Attributes
    ----------
    store : str
        The case store folder.
    holder : dict
        Who holds the lock, as it wrote itself down: ``pid``, ``host``, ``since``
        (UTC, ISO 8601) and ``command``; empty when it could not be read.
    """

    def __init__(self, store: str, holder: dict[str, object], waited: float) -> None:
        self.store = store
        self.holder = holder
        who = (
            f"process {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}"
            if holder
            else "another process (it has not written its name yet)"
        )
        super().__init__(
            f"{store}: the case store is being written by {who}; waited {waited:g} s. "
            "Let that ingest finish and run this one again (or pass a longer wait=); "
            "one store takes one writer at a time"
        )


class StoreIntegrityError(StoreError):
    """A file of a case store is missing, changed or unreadable, or a store is damaged.

    Attributes
    ----------
    path : str
        The file (or folder) at fault.
    problem : str
        What is wrong with it.
    """

    def __init__(self, path: str, problem: str, advice: str | None = None) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"{path}: {problem}. "
            + (
                advice
                or "The case store no longer holds what was ingested: restore the file "
                "from a copy, or ingest the evidence again into a new folder"
            )
        )


class DatasetNotFoundError(KmsForensicsError, FileNotFoundError):
    """A curated dataset is not on this machine."""


class TemplateNotFoundError(KmsForensicsError, FileNotFoundError):
    """No report template of that name or path."""


class ReportParameterError(KmsForensicsError, ValueError):
    """A report parameter the template does not have, or a value it cannot take."""


class ReportError(KmsForensicsError, RuntimeError):
    """The report template failed while it ran."""


class TriageError(KmsForensicsError, ValueError):
    """A triage record that cannot be read, written or applied as asked."""


class TimezoneError(KmsForensicsError, ValueError):
    """A name that is not an IANA time zone."""


class NoEvidenceError(KmsForensicsError, FileNotFoundError):
    """The sources hold no file, or no log this tool reads."""


class UnknownRuleError(KmsForensicsError, KeyError):
    """A rule id or a rule parameter that the pack does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownReferenceError(KmsForensicsError, KeyError):
    """An identifier names no node of the graph."""

    def __str__(self) -> str:
        return str(self.args[0])


class AmbiguousReferenceError(KmsForensicsError, LookupError):
    """A bare identifier names several nodes."""


class ParseWarning(UserWarning):
    """Records or files were rejected or skipped; the details are in ``case.issues``."""


class DetectionNote(UserWarning):
    """Something the rule pack could not do on this run (a rule skipped, and why)."""
