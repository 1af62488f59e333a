"""Synthetic evidence: every delivery shape, reproducibly (the generator builds on this).

* :mod:`~kmsforensics.synth.org`: the organisation (accounts, identities, keys, secrets);
* :mod:`~kmsforensics.synth.traffic`: its normal activity, in time order;
* :mod:`~kmsforensics.synth.writers`: every delivery shape the loader reads;
* :mod:`~kmsforensics.synth.scenarios`: attacks with ground truth;
* :mod:`~kmsforensics.synth.generate`: all of it, streamed to disk, with ``truth.json``.
"""

from .generate import generate
from .org import Organisation, build_organisation
from .traffic import Traffic, normal_traffic
from .writers import (
    Written,
    flatten_event,
    sls_envelope,
    write_csv,
    write_json_array,
    write_jsonl,
    write_kms_sls,
    write_lookup_pages,
    write_oss_tree,
    write_sls_csv,
    write_sls_jsonl,
)

__all__ = [
    "Organisation",
    "Traffic",
    "Written",
    "build_organisation",
    "flatten_event",
    "generate",
    "normal_traffic",
    "sls_envelope",
    "write_csv",
    "write_json_array",
    "write_jsonl",
    "write_kms_sls",
    "write_lookup_pages",
    "write_oss_tree",
    "write_sls_csv",
    "write_sls_jsonl",
]
