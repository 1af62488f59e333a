"""kmsforensics: forensic analysis of Alibaba Cloud KMS access logs and ActionTrail events.

Examples
--------
>>> import kmsforensics as kf
>>> kf.__version__ == kf._version.__version__
True
"""

from . import _version, datasets, detections, graph, handover, report, schema, synth, triage
from ._version import __version__
from .case import Case
from .detections import DetectionNote, detect, evidence_rows, rules
from .display import display_timezone, set_display_timezone
from .errors import (
    DecompressionLimitError,
    EvidenceNotFoundError,
    KmsForensicsError,
    LogParseError,
    ParseWarning,
    UnknownFormatError,
    UnsafeArchiveError,
)
from .graph import blast_radius, build_graph, plot_graph, trace, who_accessed
from .handover import export_findings, export_neighbourhood, export_timeline
from .loader import load
from .plots import (
    plot_activity,
    plot_error_rate,
    plot_hour_of_week,
    plot_swimlanes,
    plot_top,
)
from .store import IngestReport, StoreError, ingest
from .timeline import timeline, usage


def __getattr__(name: str) -> object:
    """Import ``kf.widgets`` on first use (it needs the lab extra: ipywidgets)."""
    if name == "widgets":
        import importlib

        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module 'kmsforensics' has no attribute {name!r}")


__all__ = [
    "Case",
    "DecompressionLimitError",
    "DetectionNote",
    "EvidenceNotFoundError",
    "IngestReport",
    "KmsForensicsError",
    "LogParseError",
    "ParseWarning",
    "StoreError",
    "UnknownFormatError",
    "UnsafeArchiveError",
    "__version__",
    "_version",
    "blast_radius",
    "build_graph",
    "datasets",
    "detect",
    "detections",
    "display_timezone",
    "evidence_rows",
    "export_findings",
    "export_neighbourhood",
    "export_timeline",
    "graph",
    "handover",
    "ingest",
    "load",
    "plot_activity",
    "plot_error_rate",
    "plot_graph",
    "plot_hour_of_week",
    "plot_swimlanes",
    "plot_top",
    "report",
    "rules",
    "schema",
    "set_display_timezone",
    "synth",
    "timeline",
    "trace",
    "triage",
    "usage",
    "who_accessed",
]
