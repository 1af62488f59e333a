"""kmsforensics: forensic analysis of Alibaba Cloud KMS access logs and ActionTrail events.

Examples
--------
>>> import kmsforensics as kf
>>> kf.__version__ == kf._version.__version__
True
"""

import warnings

import pandas

from . import _version, datasets, detections, graph, handover, report, schema, synth
from ._version import __version__
from .case import Case
from .detections import DetectionNote, detect, evidence_rows, incidents, list_rules
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


def rules() -> pandas.DataFrame:
    """List the rule pack (deprecated: use :func:`list_rules`; removed in the next release).

    ``kf.rules`` shadowed the ``kmsforensics.detections.rules`` subpackage.
    """
    warnings.warn(
        "kf.rules() is renamed kf.list_rules(); kf.rules will be removed in the next release",
        FutureWarning,
        stacklevel=2,
    )
    return list_rules()


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
    "evidence_rows",
    "export_findings",
    "export_neighbourhood",
    "export_timeline",
    "graph",
    "handover",
    "incidents",
    "ingest",
    "list_rules",
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
    "synth",
    "timeline",
    "trace",
    "usage",
    "who_accessed",
]
