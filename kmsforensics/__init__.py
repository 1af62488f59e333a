"""kmsforensics: forensic analysis of Alibaba Cloud KMS access logs and ActionTrail events.

Examples
--------
>>> import kmsforensics as kf
>>> kf.__version__ == kf._version.__version__
True
"""

from . import _version, datasets, detections, graph, schema, synth
from ._version import __version__
from .case import Case
from .detections import DetectionNote, detect, evidence_rows, rules
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
from .loader import load

__all__ = [
    "Case",
    "DecompressionLimitError",
    "DetectionNote",
    "EvidenceNotFoundError",
    "KmsForensicsError",
    "LogParseError",
    "ParseWarning",
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
    "graph",
    "load",
    "plot_graph",
    "rules",
    "schema",
    "synth",
    "trace",
    "who_accessed",
]
