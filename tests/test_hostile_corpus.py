"""A hostile evidence folder: nothing in it can stop, hang or hide part of a load.

Every file here is built in a temporary folder by hand: FIFOs, sockets, broken and
looping links, damaged and encrypted zip archives, archives nested past the depth
limit, and archives holding two members of the same name.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

import kmsforensics as kf
from kmsforensics.evidence import MAX_ARCHIVE_DEPTH


def kms_line(n: int) -> bytes:
    """A KMS instance access-log record (a JSON line), fields in an unusual order."""
    record = {
        "api_name": "AsymmetricSign",
        "client_ip": f"100.64.{n // 250}.{n % 250}",
        "time": f"2026-05-{1 + n % 28:02d}T08:00:{n % 60:02d}Z",
        "key_id": "key-hostile00000000000001",
        "request_id": f"kms-req-{n:05d}",
        "instance_id": "kst-hostile0000000000001",
        "response_code": 200,
    }
    return json.dumps(record).encode() + b"\n"


def load(*sources: Path, **kwargs: Any) -> kf.Case:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kf.ParseWarning)
        return kf.load(*sources, progress=False, **kwargs)


def by_name(case: kf.Case) -> dict[str, dict[str, Any]]:
    """Manifest rows by file name (a member's own name, without its archives)."""
    return {
        Path(str(row["path"]).rsplit("::", 1)[-1]).name: dict(row)
        for _, row in case.manifest.iterrows()
    }


def zipped(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        for name, data in members:
            zf.writestr(name, data)
    return buffer.getvalue()


def run_load_in_a_child(folder: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Load in a separate process, so that a hang fails the test instead of stalling it."""
    code = (
        "import sys, warnings, kmsforensics as kf; warnings.simplefilter('ignore');"
        "c = kf.load(sys.argv[1], progress=False);"
        "print(c.manifest[['path', 'status', 'reason']].to_json(orient='records'))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(folder)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
    )


def test_fifos_sockets_and_links_are_listed_never_opened(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(kms_line(1))
    os.mkfifo(tmp_path / "pipe.jsonl")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "gone.jsonl")
    (tmp_path / "loop.jsonl").symlink_to(tmp_path / "loop.jsonl")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_bytes(kms_line(2))
    (tmp_path / "sub-link").symlink_to(tmp_path / "sub")
    try:
        rows = json.loads(run_load_in_a_child(tmp_path).stdout)
    finally:
        server.close()
    status = {Path(r["path"]).name: (r["status"], r["reason"]) for r in rows}
    assert status["a.jsonl"][0] == status["b.jsonl"][0] == "loaded"
    assert status["pipe.jsonl"] == (
        "skipped",
        "named pipe (FIFO): not read, as opening it could block the load",
    )
    assert status["sock"] == ("skipped", "socket: not read")
    assert status["loop.jsonl"] == ("skipped", "symbolic link loop: not read")
    assert status["dangling.jsonl"][0] == "skipped"
    assert "dangling symbolic link" in status["dangling.jsonl"][1]
    assert status["sub-link"][0] == "skipped" and "not followed" in status["sub-link"][1]


def test_a_fifo_given_by_name_is_listed_and_strict_names_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    case = load(tmp_path / "pipe")
    assert case.manifest.status.tolist() == ["skipped"]
    with pytest.raises(kf.UnreadableEvidenceError, match=r"pipe: named pipe \(FIFO\)") as err:
        load(tmp_path / "pipe", strict=True)
    assert err.value.path == str(tmp_path / "pipe")


def test_self_looping_symlink_strict(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "ok.jsonl").write_bytes(kms_line(3))
    assert by_name(load(tmp_path))["ok.jsonl"]["records_loaded"] == 1
    with pytest.raises(kf.UnreadableEvidenceError, match="loop: symbolic link loop"):
        load(tmp_path, strict=True)


def test_corrupt_zip_is_a_manifest_row(tmp_path: Path) -> None:
    good = zipped([("k.jsonl", kms_line(4))])
    (tmp_path / "bad.zip").write_bytes(good[:30] + b"\x00" * 40)  # magic, then garbage
    (tmp_path / "ok.jsonl").write_bytes(kms_line(5))
    case = load(tmp_path)
    rows = by_name(case)
    assert rows["ok.jsonl"]["records_loaded"] == 1
    assert rows["bad.zip"]["status"] == "skipped"
    assert "zip archive that cannot be opened: BadZipFile" in rows["bad.zip"]["reason"]
    assert len(rows["bad.zip"]["sha256"]) == 64
    with pytest.raises(kf.UnreadableEvidenceError, match=r"bad\.zip: zip archive"):
        load(tmp_path, strict=True)


def encrypted_zip(name: str, data: bytes) -> bytes:
    """A zip archive whose one member is flagged encrypted (ZipCrypto, stored)."""
    plain = zipped([(name, data)])
    # set bit 0 of the general purpose flags in the local and central headers
    local = plain.index(b"PK\x03\x04")
    central = plain.index(b"PK\x01\x02")
    out = bytearray(plain)
    for offset in (local + 6, central + 8):
        (flags,) = struct.unpack_from("<H", out, offset)
        struct.pack_into("<H", out, offset, flags | 1)
    return bytes(out)


def test_encrypted_member_is_listed_and_the_rest_read(tmp_path: Path) -> None:
    (tmp_path / "locked.zip").write_bytes(encrypted_zip("secret.jsonl", kms_line(6)))
    (tmp_path / "ok.jsonl").write_bytes(kms_line(7))
    case = load(tmp_path)
    rows = by_name(case)
    assert rows["ok.jsonl"]["records_loaded"] == 1
    assert rows["secret.jsonl"]["status"] == "skipped"
    assert rows["secret.jsonl"]["reason"].startswith("encrypted zip member")
    with pytest.raises(kf.UnreadableEvidenceError, match=r"locked\.zip::secret\.jsonl"):
        load(tmp_path, strict=True)


def test_archives_nested_past_the_limit_are_reported(tmp_path: Path) -> None:
    data = zipped([("deepest.jsonl", kms_line(8))])
    for level in range(5, 0, -1):
        data = zipped([(f"level{level}.zip", data), (f"at{level}.jsonl", kms_line(10 + level))])
    (tmp_path / "outer.zip").write_bytes(data)
    case = load(tmp_path)
    rows = by_name(case)
    depth = MAX_ARCHIVE_DEPTH
    for level in range(1, depth):  # the outer archive is level 1
        assert rows[f"level{level}.zip"]["status"] == "archive"
    for level in range(1, depth + 1):
        assert rows[f"at{level}.jsonl"]["records_loaded"] == 1
    stopped = rows[f"level{depth}.zip"]
    assert stopped["status"] == "skipped" and len(stopped["sha256"]) == 64
    assert stopped["reason"] == (
        f"zip archive nested {depth + 1} levels deep: not opened, so nothing in it is read "
        f"(archives are opened {depth} levels deep; extract it and load it on its own)"
    )
    assert f"at{depth + 1}.jsonl" not in rows
    with pytest.raises(kf.UnreadableEvidenceError, match=f"level{depth}.zip: zip archive nested"):
        load(tmp_path, strict=True)


def test_two_members_with_the_same_name_are_both_read(tmp_path: Path) -> None:
    data = zipped([("logs/kms.jsonl", kms_line(20)), ("logs/kms.jsonl", kms_line(21))])
    (tmp_path / "twice.zip").write_bytes(data)
    case = load(tmp_path)
    assert sorted(case.kms.request_id) == ["kms-req-00020", "kms-req-00021"]
    paths = case.manifest.path.tolist()
    assert paths[1].endswith("twice.zip::logs/kms.jsonl")
    assert paths[2].endswith("twice.zip::logs/kms.jsonl [entry 2]")
    assert case.manifest.sha256.nunique() == 3
