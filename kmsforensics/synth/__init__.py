"""Synthetic evidence: every delivery shape, reproducibly (the generator builds on this).

Today this package holds the writers (:mod:`kmsforensics.synth.writers`); the
organisation model, normal behaviour and attack scenarios come next.
"""

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
    "Written",
    "flatten_event",
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
