"""Evidence shaped like real exports, for the load benchmark (issue 12 §3).

Unlike ``bench_load.Org`` (and unlike :mod:`kmsforensics.synth`), these events
have the properties that made the loader slow on evidence it had not generated:

* ActionTrail events of ~1 KB with 7 request parameters, in OSS-style gz JSON
  arrays of 1,000 events;
* numbers and strings mixed in one field (``RoleSessionName``,
  ``stsTokenPlayerUid``, ``DurationSeconds``, ``eventVersion``);
* a new source IP and a new STS key for nearly every event (so no column has
  few distinct values to lean on);
* KMS as ONE gz JSON-lines file of all its records (~770 bytes each), as an SLS
  download gives it.

Usage: ``python benchmarks/wild_evidence.py OUT_DIR [--events N]``
"""

from __future__ import annotations

import argparse
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from isal import igzip

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_APIS = (
    "Decrypt",
    "GenerateDataKey",
    "GetSecretValue",
    "Encrypt",
    "DescribeKey",
    "AssumeRole",
    "ListKeys",
    "GetParametersForImport",
)
_AGENTS = (
    "aliyun-sdk-java/2.7.0 Java/11.0.19 Linux/5.10.134-16.al8.x86_64 HTTPClient/ApacheHttpClient",
    "AlibabaCloud (Linux; x86_64) Python/3.10.12 Core/2.14.0 python-requests/2.31.0 Tea/kms",
    "Terraform/1.6.2 (+https://www.terraform.io) terraform-provider-alicloud/1.212.0",
    "aliyun-cli/v3.0.190 (darwin; arm64) Golang/1.21.3",
)


class Wild:
    """A random generator of wild-shaped ActionTrail events and KMS records."""

    def __init__(self, seed: int, n: int) -> None:
        self.rng = random.Random(seed)
        self.n = n
        self.start = datetime(2025, 9, 1, tzinfo=UTC)
        self.accounts = [str(self.rng.randrange(10**15, 10**16)) for _ in range(40)]
        self.roles = [(str(self.rng.randrange(10**17, 10**18)), f"svc-{i}") for i in range(300)]

    def _token(self, k: int) -> str:
        return "".join(self.rng.choices(_ALNUM, k=k))

    def _ip(self) -> str:
        r = self.rng.getrandbits(32)
        return f"{(r >> 24) % 223 + 1}.{(r >> 16) & 255}.{(r >> 8) & 255}.{r & 255}"

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032X}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def event(self, i: int) -> dict[str, object]:
        """One ActionTrail event (~1 KB), made with a fresh STS key and source IP."""
        rng = self.rng
        stamp = (self.start + timedelta(seconds=i * 30 * 86400 / self.n)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        account = rng.choice(self.accounts)
        role_id, role = rng.choice(self.roles)
        session = f"{role}-{rng.randrange(10**6)}"
        uid = rng.randrange(10**15, 10**16)
        api = rng.choice(_APIS)
        request = self._uuid()
        params: dict[str, object] = {
            "KeyId": f"key-shh{self._token(17).lower()}",
            "RegionId": rng.choice(("cn-shanghai", "cn-hangzhou", "ap-southeast-1")),
            "stsTokenPlayerUid": uid if rng.random() < 0.5 else str(uid),  # mixed types
            "stsTokenPrincipalName": f"{role}/{session}",
            "RoleSessionName": rng.randrange(10**6) if rng.random() < 0.3 else session,
            "DurationSeconds": 3600 if rng.random() < 0.5 else "3600",
            "AcsHost": "kms-vpc.cn-shanghai.aliyuncs.com",
        }
        return {
            "eventVersion": 1 if rng.random() < 0.5 else "1",
            "eventId": self._uuid(),
            "eventTime": stamp,
            "eventName": api,
            "eventType": "ApiCall",
            "eventCategory": "Management",
            "eventRW": "Read" if api != "AssumeRole" else "Write",
            "eventSource": "kms-vpc.cn-shanghai.aliyuncs.com",
            "serviceName": "Kms" if api != "AssumeRole" else "Sts",
            "acsRegion": "cn-shanghai",
            "apiVersion": "2016-01-20",
            "requestId": request,
            "sourceIpAddress": self._ip(),
            "userAgent": rng.choice(_AGENTS),
            "userIdentity": {
                "type": "assumed-role",
                "principalId": f"{role_id}:{session}",
                "accountId": account,
                "userName": f"{role}:{session}",
                "accessKeyId": "STS." + self._token(rng.choice((26, 28, 58))),
                "sessionContext": {
                    "attributes": {"mfaAuthenticated": "false", "creationDate": stamp}
                },
            },
            "requestParameters": params,
            "additionalEventData": {"Scheme": "https", "CallerBid": str(rng.randrange(99999))},
            "recipientAccountId": account,
            "errorCode": "" if rng.random() > 0.02 else "Forbidden.KeyNotFound",
            "errorMessage": "",
            "isGlobal": False,
        }

    def kms_record(self, i: int) -> dict[str, object]:
        """One KMS access-log record (~770 bytes) as the SLS download gives it."""
        rng = self.rng
        stamp = (self.start + timedelta(seconds=i * 30 * 86400 / self.n)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        role_id, _ = rng.choice(self.roles)
        key = f"key-shh{self._token(17).lower()}"
        ok = rng.random() > 0.02
        return {
            "__time__": str(int((self.start + timedelta(seconds=i * 2.592)).timestamp())),
            "__topic__": "kms_audit_log",
            "__source__": self._ip(),
            "time": stamp,
            "request_id": self._uuid().lower(),
            "api_name": rng.choice(("Decrypt", "Encrypt", "GenerateDataKey", "GetSecretValue")),
            "api_version": "dkms-gcs-0.2",
            "identity_type": "ram-role",
            "principal_id": role_id,
            "account_id": rng.choice(self.accounts),
            "access_key_id": "STS." + self._token(28),
            "access_key_fingerprint": "",
            "client_ip": self._ip(),
            "instance_id": "kst-shh64f2c1e9a8b7d6c5e4f3",
            "region_id": "cn-shanghai",
            "resource_id": key,
            "resource_parameters": json.dumps(
                {"key_id": key, "key_version_id": f"{key}-{self._token(8).lower()}", "index": ""}
            ),
            "share_gateway_api_name": "",
            "status_code": 200 if ok else "400",  # mixed types
            "duration": round(rng.lognormvariate(0.4, 0.7), 3),
            "error_message": "" if ok else "Rejected.Disabled",
            "level": "INFO",
            "user_id": rng.choice(self.accounts),
            "useragent": rng.choice(("alibabacloud-dkms-gcs-go-sdk/0.5.1", "dkms-gcs-java/0.5.4")),
            "version": "V1.0",
        }


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    """Write (once) the wild ActionTrail folder and the single KMS file; return them."""
    at_dir, kms_file = folder / f"wild-at-{n}", folder / f"wild-kms-{n}" / "kms_audit_log.json.gz"
    marker = folder / f".done-wild-v1-{n}"
    if marker.exists():
        return at_dir, kms_file.parent
    at_dir.mkdir(parents=True, exist_ok=True)
    kms_file.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    wild = Wild(7, n)
    per_file = 1000
    for f in range(max(1, n // per_file)):
        events = [wild.event(f * per_file + j) for j in range(per_file)]
        name = f"Actiontrail_cn-shanghai_{f:06d}_1002_{per_file}.gz"
        (at_dir / name).write_bytes(igzip.compress(json.dumps(events).encode(), 3, mtime=0))
    with igzip.open(kms_file, "wb", compresslevel=3) as out:
        block: list[str] = []
        for i in range(n):
            block.append(json.dumps(wild.kms_record(i)))
            if len(block) == 10_000:
                out.write(("\n".join(block) + "\n").encode())
                block = []
        if block:
            out.write(("\n".join(block) + "\n").encode())
    marker.touch()
    print(
        f"generated wild evidence: {n:,} + {n:,} records in {time.perf_counter() - started:.0f} s"
    )
    return at_dir, kms_file.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    print(generate(args.out, args.events))


if __name__ == "__main__":
    main()
