"""Benchmark kf.load against a naive baseline and against `gzip -dc`, in one run.

Generates (once, cached under benchmarks/data/) two evidence sets:

* its own: N ActionTrail events as OSS-style gz JSON arrays (1,000 events a file)
  and N KMS access-log records as gz JSON lines (10,000 a file);
* "wild" (:mod:`wild_evidence`): ~1 KB events with 7 request parameters, mixed
  types in one field, a new source IP and STS key for nearly every event, and KMS
  as ONE gz JSON-lines file of N records, as an SLS download gives it;

then measures, on each, in fresh processes:

* ``gzip -dc`` of the same files (the floor: decompression alone);
* the naive baseline: ``json.loads`` per record + ``pandas.json_normalize``;
* ``kf.load``: events/s, peak RSS, and DataFrame bytes per event.

Usage: ``python benchmarks/bench_load.py [--events 1000000] [--skip-naive] [--sets own,wild]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).parent
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789"


# --- evidence generation ------------------------------------------------------------


class Org:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.accounts = [str(rng.randrange(10**15, 10**16)) for _ in range(6)]
        self.users = [
            (
                rng.choice(self.accounts),
                str(rng.randrange(10**17, 10**18)),
                f"user-{i:03d}",
                "LTAI" + "".join(rng.choices(ALPHABET, k=20)),
            )
            for i in range(120)
        ]
        self.roles = [
            (rng.choice(self.accounts), str(rng.randrange(10**17, 10**18)), f"role-{i:02d}")
            for i in range(30)
        ]
        self.ips = [
            f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}" for _ in range(400)
        ] + [f"203.0.113.{i}" for i in range(50)]
        self.keys = ["key-hzz" + uuid.UUID(int=rng.getrandbits(128)).hex[:17] for _ in range(400)]
        self.secrets = [f"app/{i:03d}/db-password" for i in range(200)]
        self.agents = [
            "AlibabaCloud (Linux; amd64) Python/3.11.7 Core/2.13.3 python-requests/2.31.0",
            "AlibabaCloud (darwin; amd64) Golang/1.15.3 Core/0.01 TeaDSL/1",
            "AlibabaCloud (Linux; x86_64) Java/1.8.0_252-b09 Core/4.4.6 HTTPClient/Apache",
            "AliyunConsole",
            "kms.console.aliyun.com",
        ]
        self.start = datetime(2026, 3, 2, tzinfo=UTC)
        self.client_keys = [
            (
                f"KAAP.{uuid.UUID(int=rng.getrandbits(128))}",
                f"sha256-{rng.getrandbits(256):064x}",
                f"aap-{i:02d}",
            )
            for i in range(24)
        ]

    def pick(self, seq: list) -> object:  # Zipf-ish popularity
        return seq[min(int(self.rng.paretovariate(1.2)) - 1, len(seq) - 1)]

    def sts_key(self, role_id: str, session: str) -> str:
        """One STS key per role session (as STS issues them), stable across events."""
        return "STS." + uuid.uuid5(uuid.NAMESPACE_OID, role_id + session).hex[:28]

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128))).upper()

    def at_event(self, i: int, n: int) -> dict:
        rng = self.rng
        t = self.start + timedelta(seconds=i * 7 * 86400 / n)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
        request = self.uid()
        api = rng.choice(
            [
                "Decrypt",
                "GenerateDataKey",
                "GetSecretValue",
                "DescribeKey",
                "ListKeys",
                "Encrypt",
                "DescribeSecret",
                "AssumeRole",
                "ListSecrets",
                "CreateKey",
            ]
        )
        if rng.random() < 0.35:
            account, role_id, role = self.pick(self.roles)
            session = f"s-{rng.randrange(5000)}"
            identity = {
                "type": "assumed-role",
                "accountId": account,
                "principalId": f"{role_id}:{session}",
                "userName": f"{role}:{session}",
                "accessKeyId": self.sts_key(role_id, session),
                "sessionContext": {
                    "attributes": {"mfaAuthenticated": "false", "creationDate": stamp}
                },
            }
        else:
            account, uid, name, ak = self.pick(self.users)
            identity = {
                "type": "ram-user",
                "accountId": account,
                "principalId": uid,
                "userName": name,
                "accessKeyId": ak,
            }
        params: dict = {
            "AcsHost": "kms.cn-hangzhou.aliyuncs.com",
            "AcsProduct": "Kms",
            "RequestId": request,
            "RegionId": "cn-hangzhou",
            "HostId": "kms.cn-hangzhou.aliyuncs.com",
            "charset": "UTF-8",
        }
        event = {
            "apiVersion": "2016-01-20",
            "requestId": request,
            "eventType": "ApiCall",
            "userIdentity": identity,
            "acsRegion": "cn-hangzhou",
            "eventName": api,
            "eventRW": "Read",
            "eventCategory": "Management",
            "requestParameters": params,
            "eventSource": "kms.cn-hangzhou.aliyuncs.com",
            "serviceName": "Kms",
            "eventTime": stamp,
            "userAgent": self.pick(self.agents),
            "eventId": self.uid(),
            "additionalEventData": {"Scheme": "https", "CallerBid": "26842"},
            "errorCode": "",
            "errorMessage": "",
            "eventVersion": 1,
            "sourceIpAddress": self.pick(self.ips),
            "recipientAccountId": account,
            "isGlobal": False,
        }
        if api == "AssumeRole":
            owner, role_id, role = rng.choice(self.roles)
            key = self.sts_key(role_id, "s-1")
            params.update(
                {
                    "RoleArn": f"acs:ram::{owner}:role/{role}",
                    "RoleSessionName": "s-1",
                    "DurationSeconds": 3600,
                }
            )
            event.update(
                serviceName="Sts",
                eventSource="sts.aliyuncs.com",
                responseElements={
                    "Credentials": {"AccessKeyId": key},
                    "AssumedRoleUser": {"AssumedRoleId": f"{role_id}:s-1"},
                },
                referencedResources={"ACS::RAM::AccessKey": [key]},
            )
        elif api in ("GetSecretValue", "DescribeSecret"):
            params["SecretName"] = self.pick(self.secrets)
        else:
            params["KeyId"] = self.pick(self.keys)
        if rng.random() < 0.03:
            event["errorCode"] = rng.choice(["Forbidden.KeyNotFound", "NoPermission", "Throttling"])
            event["errorMessage"] = "The request was denied."
        return event

    def kms_record(self, i: int, n: int) -> dict:
        rng = self.rng
        t = self.start + timedelta(seconds=i * 7 * 86400 / n)
        key = self.pick(self.keys)
        account, uid, _, ak = self.pick(self.users)
        aap = rng.random() < 0.5
        ok = rng.random() > 0.02
        client_key, fingerprint, aap_name = self.pick(self.client_keys)
        return {
            "access_key_fingerprint": fingerprint if aap else "",
            "access_key_id": client_key if aap else ak,
            "account_id": account,
            "api_name": rng.choice(["Decrypt", "Encrypt", "GenerateDataKey", "GetSecretValue"]),
            "api_version": "dkms-gcs-0.2",
            "client_ip": self.pick(self.ips),
            "duration": round(rng.lognormvariate(0.3, 0.6), 3),
            "error_message": "" if ok else "Rejected.Disabled",
            "identity_type": "aap" if aap else "ram-user",
            "instance_id": "kst-hzz63ff0d55h5vdas1234",
            "level": "INFO",
            "principal_id": aap_name if aap else uid,
            "region_id": "cn-hangzhou",
            "request_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "resource_id": key,
            "resource_parameters": json.dumps(
                {"key_id": key, "key_version_id": key + "-v1ab", "index": ""}
            ),
            "share_gateway_api_name": "",
            "status_code": 200 if ok else 400,
            "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "user_id": self.accounts[0],
            "useragent": self.pick(self.agents),
            "version": "V1.0",
        }


def generate(folder: Path, n: int) -> tuple[Path, Path]:
    at_dir, kms_dir = folder / f"at-{n}", folder / f"kms-{n}"
    marker = folder / f".done-v2-{n}"
    if marker.exists():
        return at_dir, kms_dir
    at_dir.mkdir(parents=True, exist_ok=True)
    kms_dir.mkdir(parents=True, exist_ok=True)
    org = Org(random.Random(42))
    started = time.perf_counter()
    per_file = 1000
    for f in range(max(1, n // per_file)):
        events = [org.at_event(f * per_file + j, n) for j in range(per_file)]
        name = f"Actiontrail_cn-hangzhou_{f:06d}_1002_{per_file}.gz"
        (at_dir / name).write_bytes(gzip.compress(json.dumps(events).encode(), 6, mtime=0))
    per_file = 10_000
    for f in range(max(1, n // per_file)):
        lines = "".join(
            json.dumps(org.kms_record(f * per_file + j, n)) + "\n" for j in range(per_file)
        )
        (kms_dir / f"kms_audit_log_{f:04d}.json.gz").write_bytes(
            gzip.compress(lines.encode(), 6, mtime=0)
        )
    marker.touch()
    print(f"generated {n:,} + {n:,} records in {time.perf_counter() - started:.0f} s")
    return at_dir, kms_dir


# --- measured runs (each in its own process) ---------------------------------------------


def measure_gzip(folder: Path) -> dict:
    files = sorted(str(p) for p in folder.iterdir())
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["gzip", "-dc", *files], stdout=sink, check=True)
    return {"seconds": time.perf_counter() - started}


def measure_naive(folder: Path, kind: str) -> dict:
    import pandas as pd

    started = time.perf_counter()
    records = []
    for path in sorted(folder.iterdir()):
        text = gzip.decompress(path.read_bytes()).decode()
        if kind == "at":
            body = text.strip()[1:-1]
            decoder = json.JSONDecoder()
            pos = 0
            while pos < len(body):  # json.loads per record, from the array text
                while pos < len(body) and body[pos] in " ,\n":
                    pos += 1
                if pos >= len(body):
                    break
                _, end = decoder.raw_decode(body, pos)
                records.append(json.loads(body[pos:end]))
                pos = end
        else:
            records.extend(json.loads(line) for line in text.splitlines() if line)
    frame = pd.json_normalize(records)
    return {
        "seconds": time.perf_counter() - started,
        "rows": len(frame),
        "bytes_per_event": frame.memory_usage(deep=True).sum() / max(len(frame), 1),
    }


def measure_kf(folder: Path) -> dict:
    import resource

    import kmsforensics as kf

    started = time.perf_counter()
    case = kf.load(folder, progress=False)
    seconds = time.perf_counter() - started
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = len(case.activity)
    out = {
        "seconds": seconds,
        "rows": rows,
        "activity_bytes": case.activity.memory_usage(deep=True).sum() / max(rows, 1),
        "kms_bytes": case.kms.memory_usage(deep=True).sum() / max(len(case.kms), 1),
        "actiontrail_bytes": case._actiontrail_text.memory_usage(deep=True).sum()
        / max(len(case._actiontrail_text), 1),
        "issues": len(case.issues),
    }
    if len(case._actiontrail_text):
        started = time.perf_counter()
        frame = case.actiontrail
        out["dicts_seconds"] = time.perf_counter() - started
        out["dicts_bytes"] = frame.memory_usage(deep=True).sum() / len(frame)
        out["dicts_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_peak_mb"] = load_peak
    return out


def run_child(what: str, folder: Path, kind: str) -> dict:
    extra = f", {kind!r}" if what == "measure_naive" else ""
    code = (
        f"import json, resource, sys; sys.path.insert(0, {str(HERE)!r}); "
        f"import bench_load as b; r = b.{what}(b.Path({str(folder)!r}){extra}); "
        "r['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "print('RESULT' + json.dumps(r))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT") :])


def median_run(what: str, folder: Path, kind: str, repeat: int) -> dict:
    """Run a measurement ``repeat`` times (fresh processes); keep the median by time."""
    runs = sorted(
        (run_child(what, folder, kind) for _ in range(repeat)), key=lambda r: r["seconds"]
    )
    chosen = runs[len(runs) // 2]
    chosen["all_seconds"] = [round(r["seconds"], 2) for r in runs]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of gzip -dc and kf.load (median shown); naive runs once",
    )
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--sets", default="own,wild", help="evidence sets: own, wild or both")
    args = parser.parse_args()
    sets = []
    if "own" in args.sets:
        at_dir, kms_dir = generate(args.data, args.events)
        sets += [
            ("own: ActionTrail (OSS gz JSON arrays)", at_dir, "at"),
            ("own: KMS access log (gz JSON lines, 10,000 a file)", kms_dir, "kms"),
        ]
    if "wild" in args.sets:
        sys.path.insert(0, str(HERE))
        from wild_evidence import generate as generate_wild

        wild_at, wild_kms = generate_wild(args.data, args.events)
        sets += [
            ("wild: ActionTrail (OSS gz JSON arrays, ~1 KB events)", wild_at, "at"),
            ("wild: KMS access log (ONE gz JSON-lines file)", wild_kms, "kms"),
        ]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for label, folder, kind in sets:
        size = sum(p.stat().st_size for p in folder.iterdir())
        raw = sum(_gz_size(p) for p in folder.iterdir())
        print(
            f"\n== {label}: {args.events:,} records, {len(list(folder.iterdir()))} files,"
            f" {size / 1e6:.0f} MB gz, {raw / 1e6:.0f} MB decompressed"
        )
        gz = median_run("measure_gzip", folder, kind, args.repeat)
        mine = median_run("measure_kf", folder, kind, args.repeat)
        naive = None if args.skip_naive else run_child("measure_naive", folder, kind)
        n = args.events
        print(f"{'':28}{'seconds':>9}{'events/s':>12}{'peak RSS MB':>13}{'bytes/event':>13}")
        print(f"{'gzip -dc':28}{gz['seconds']:9.2f}{n / gz['seconds']:12,.0f}")
        if naive:
            print(
                f"{'naive json.loads+normalize':28}{naive['seconds']:9.2f}"
                f"{n / naive['seconds']:12,.0f}{naive['peak_rss_mb']:13,.0f}"
                f"{naive['bytes_per_event']:13,.0f}"
            )
        print(
            f"{'kf.load':28}{mine['seconds']:9.2f}{n / mine['seconds']:12,.0f}"
            f"{mine['load_peak_mb']:13,.0f}{mine['activity_bytes']:13,.0f}  (activity frame)"
        )
        frame = "actiontrail_bytes" if kind == "at" else "kms_bytes"
        print(f"{'':28}{'':9}{'':12}{'':13}{mine[frame]:13,.0f}  ({frame.split('_')[0]} frame)")
        if "dicts_seconds" in mine:
            print(
                f"  first access of case.actiontrail (nested dicts): "
                f"{mine['dicts_seconds']:.2f} s, {mine['dicts_bytes']:,.0f} bytes/event, "
                f"peak RSS then {mine['dicts_peak_mb']:,.0f} MB"
            )
        print(f"  runs (s): gzip -dc {gz['all_seconds']}, kf.load {mine['all_seconds']}")
        ratio = mine["seconds"] / gz["seconds"]
        per_million = mine["load_peak_mb"] * 1e6 / n
        print(f"  peak RSS per million records: {per_million:,.0f} MB")
        speedup = f", {naive['seconds'] / mine['seconds']:.1f}x the naive speed" if naive else ""
        print(f"  kf.load takes {ratio:.2f}x the gzip -dc time{speedup}; {mine['issues']} issues")


def _gz_size(path: Path) -> int:
    """Decompressed size of a (single-member) gz file, from its trailer (mod 4 GiB)."""
    with open(path, "rb") as fh:
        fh.seek(-4, os.SEEK_END)
        return int.from_bytes(fh.read(4), "little")


if __name__ == "__main__":
    main()
