"""kmsforensics: forensic analysis of Alibaba Cloud KMS access logs and ActionTrail events.

Examples
--------
>>> import kmsforensics as kf
>>> kf.__version__ == kf._version.__version__
True
"""

import warnings

import pandas

from . import _version as _version
from . import aap as aap
from . import dask_engine as _dask_engine  # registers engine="dask" with kf.open
from . import datasets as datasets
from . import detections as detections
from . import export as export
from . import graph as graph
from . import handover as handover
from . import loader as _loader
from . import report as report
from . import schema as schema
from . import store as store
from . import synth as synth
from . import triage as triage
from ._version import __version__ as __version__
from .aap import aap_config, aap_review
from .case import Case
from .detections import detect, evidence_rows, incidents, list_rules
from .detections.sigma import detect_sigma
from .display import display_timezone, set_display_timezone
from .errors import (
    AmbiguousReferenceError,
    DatasetNotFoundError,
    DecompressionLimitError,
    DetectionNote,
    EvidenceNotFoundError,
    KmsForensicsError,
    LogParseError,
    NoEvidenceError,
    ParseWarning,
    ReportError,
    ReportParameterError,
    StoreError,
    StoreIntegrityError,
    StoreLockedError,
    TemplateNotFoundError,
    TimezoneError,
    TriageError,
    UnknownFormatError,
    UnknownReferenceError,
    UnknownRuleError,
    UnreadableEvidenceError,
    UnsafeArchiveError,
)
from .export import export_bloodhound, export_ocsf
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
from .provenance import relative_paths
from .store import IngestReport, ingest, open
from .timeline import timeline, usage

# The loader, the store and the dask engine import none of each other's modules in a
# circle: they are wired together here, once. Ingest parses with the loader's parser;
# the loader opens a case store (kf.load(CASE_DIR), one more release) and the dask
# engine (kf.load(..., engine="dask")) through its openers.
store.set_parser(_loader.load_hashed)
for _opener in (store.open_for_load, _dask_engine.load_dask):
    if _opener not in _loader.OPENERS:
        _loader.OPENERS.append(_opener)


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


#: The public functions and classes (modules such as ``kf.datasets`` and
#: ``kf.graph`` and ``kf.__version__`` are attributes too, but not listed here).
__all__ = [
    "AmbiguousReferenceError",
    "Case",
    "DatasetNotFoundError",
    "DecompressionLimitError",
    "DetectionNote",
    "EvidenceNotFoundError",
    "IngestReport",
    "KmsForensicsError",
    "LogParseError",
    "NoEvidenceError",
    "ParseWarning",
    "ReportError",
    "ReportParameterError",
    "StoreError",
    "StoreIntegrityError",
    "StoreLockedError",
    "TemplateNotFoundError",
    "TimezoneError",
    "TriageError",
    "UnknownFormatError",
    "UnknownReferenceError",
    "UnknownRuleError",
    "UnreadableEvidenceError",
    "UnsafeArchiveError",
    "aap_config",
    "aap_review",
    "blast_radius",
    "build_graph",
    "detect",
    "detect_sigma",
    "display_timezone",
    "evidence_rows",
    "export_bloodhound",
    "export_findings",
    "export_neighbourhood",
    "export_ocsf",
    "export_timeline",
    "incidents",
    "ingest",
    "list_rules",
    "load",
    "open",
    "plot_activity",
    "plot_error_rate",
    "plot_graph",
    "plot_hour_of_week",
    "plot_swimlanes",
    "plot_top",
    "relative_paths",
    "rules",
    "set_display_timezone",
    "timeline",
    "trace",
    "usage",
    "who_accessed",
]
