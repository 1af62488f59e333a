"""Large gzip JSON-lines files are read piece by piece: the same case as read whole.

The pieces are made small here (a few hundred bytes) so that every hazard falls on
or near a cut: lines ending in CRLF, LF and a lone CR, blank lines, a NUL byte, bad
UTF-8, a record longer than a piece; and damaged streams (truncated, corrupt,
checksum), which the careful reader finishes where the pieces stopped.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pandas as pd
import pytest

import kmsforensics as kf
from kmsforensics.formats import stream


def _records() -> bytes:
    """KMS records written the way an SLS download by hand might look: mixed endings."""
    lines = []
    for i in range(240):
        record = {
            "request_id": f"0c1e{i:04x}-77aa-4d6e-9b1a-{i:012x}",
            "time": f"2026-05-0{1 + i % 9}T0{i % 10}:{i % 60:02d}:07.{i:03d}+08:00",
            "api_name": ["Decrypt", "GetSecretValue", "Encrypt"][i % 3],
            "client_ip": f"198.51.100.{i % 200}",
            "instance_id": "kst-sgp64a6e2f6xy8zp9m0dw",
            "identity_type": "RamRole" if i % 2 else "AAP",
            "principal_id": str(376559927390000000 + i % 7),
            "status_code": 200 if i % 11 else "403",
            "resource_parameters": json.dumps({"key_id": f"key-sgp{i % 5}"}),
        }
        if i % 37 == 5:
            record["note"] = "x" * 900  # longer than a piece
        lines.append(json.dumps(record, separators=(",", ":") if i % 2 else (", ", ": ")))
    ending = [b"\n", b"\r\n", b"\r"]
    out = b""
    for i, line in enumerate(lines):
        text = line.encode()
        if i == 50:
            text = text.replace(b"kst-", b"kst\x00-")
        if i == 90:
            text = text.replace(b"198.51", b"198.\xff51")
        out += text + ending[i % 3]
        if i % 25 == 0:
            out += b"\n   \n"
    return out


def _load(folder: Path, pieces: bool, monkeypatch: pytest.MonkeyPatch) -> kf.Case:
    monkeypatch.setattr(stream, "STREAM_MIN_BYTES", 1 if pieces else 1 << 60)
    monkeypatch.setattr(stream, "PIECE_BYTES", 700)
    return kf.load(folder, progress=False)


def _same(whole: kf.Case, pieces: kf.Case) -> None:
    pd.testing.assert_frame_equal(whole.kms, pieces.kms)
    pd.testing.assert_frame_equal(whole.activity, pieces.activity)
    pd.testing.assert_frame_equal(whole.issues, pieces.issues)
    pd.testing.assert_frame_equal(whole.manifest, pieces.manifest)


@pytest.mark.parametrize(
    "damage",
    ["none", "truncated", "corrupt", "checksum"],
)
def test_pieces_give_the_case_of_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    raw = gzip.compress(_records(), compresslevel=6)
    if damage == "truncated":
        raw = raw[: len(raw) * 2 // 3]
    elif damage == "corrupt":
        middle = len(raw) // 2
        raw = raw[:middle] + bytes(b ^ 0x5A for b in raw[middle : middle + 64]) + raw[middle + 64 :]
    elif damage == "checksum":
        raw = raw[:-8] + (zlib.crc32(b"other") & 0xFFFFFFFF).to_bytes(4, "little") + raw[-4:]
    (tmp_path / "kms_audit_log.json.gz").write_bytes(raw)
    whole = _load(tmp_path, False, monkeypatch)
    pieces = _load(tmp_path, True, monkeypatch)
    _same(whole, pieces)
    row = pieces.manifest.iloc[0]
    assert row["records_read"] == row["records_loaded"] + row["records_rejected"]
    reasons = " ".join(pieces.issues["reason"])
    if damage == "none":
        assert len(pieces.kms) == 239  # the NUL line is rejected; the bad UTF-8 one kept
        assert row["decompressed_bytes"] == len(_records())
        assert "NUL" in reasons and "U+FFFD" in reasons
        nul = pieces.issues[pieces.issues["reason"].str.contains("NUL")].iloc[0]
        assert nul["source_record"] == 50 + 1 + 2 * 2  # two pairs of blank lines before it
    else:
        assert 0 < len(pieces.kms) <= 239
        # damaged deflate data may still inflate (to garbage): then the checksum says so
        said = {"truncated": ("truncated",), "corrupt": ("corrupt", "checksum"),
                "checksum": ("checksum",)}[damage]  # fmt: skip
        assert any(word in reasons for word in said)
    # line numbers point at the records in the decompressed file
    text = gzip.decompress(gzip.compress(_records())).decode("utf-8", "replace")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for record, request in zip(
        pieces.kms["source_record"].head(40), pieces.kms["request_id"].head(40), strict=True
    ):
        assert request in lines[int(record) - 1]
