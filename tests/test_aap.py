"""AAP configuration over time and allowed-against-used, on hand-written evidence.

The fixtures are written from the KMS OpenAPI 2016-01-20 documentation (docs/aap.md),
not from the generator: ActionTrail as a LookupEvents page with request parameters as
the API takes them (JSON arrays inside strings), KMS access-log records as a CSV export,
and configuration exports in three shapes (one response per file, an array of
responses, an SDK-wrapped ListClientKeys with its XML-style ``ClientKey`` wrapper).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import kmsforensics as kf

OWNER = "1192853035110042"
INSTANCE = "kst-hzz634e67d126u9p9wxyz"
POLICY = "kst-hzz634e67d126u9p9wxyz.efkd"
RULE = "networkrule_app"
AAP = "aap_billing"
KEY_A = "KAAP.66abf237-63f6-4625-b8cf-47e1086e0001"
KEY_B = "KAAP.0d2f7c11-9a4e-4c1b-8a55-3b1f2e6c0002"
KEY_C = "KAAP.5e6f7a8b-1c2d-4e3f-9a0b-1c2d3e4f0003"
PRINT_A = "sha256-1f2e3d4c5b6a79880716253443526170f1e2d3c4b5a69788"
PRINT_B = "sha256-9a8b7c6d5e4f30211203f4e5d6c7b8a90a1b2c3d4e5f6071"
EXPORTED = "2026-05-04T00:00:00Z"
KEY_1 = "key-hzz63d9c8d3dfv8cv1111"
KEY_2 = "key-hzz63d9c8d3dfv8cv2222"


def _event(n: int, name: str, when: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "eventId": f"0C5A9F1E-7D3B-4E2A-9B6C-{n:012X}",
        "eventName": name,
        "eventTime": when,
        "eventSource": "kms.cn-shanghai.aliyuncs.com",
        "serviceName": "Kms",
        "eventType": "ApiCall",
        "acsRegion": "cn-shanghai",
        "sourceIpAddress": "198.51.100.23",
        "userAgent": "Terraform/1.7.4 terraform-provider-alicloud/1.215.0",
        "requestId": f"5B7E0C4D-1A2F-4F6E-8D9C-{n:012X}",
        "userIdentity": {
            "type": "ram-user",
            "principalId": "206731299812345678",
            "accountId": OWNER,
            "userName": "platform-admin",
            "accessKeyId": "LTAI5tHf8Qm2KzXc9RbN4pWv",
        },
        "requestParameters": params,
        "recipientAccountId": OWNER,
        **extra,
    }


def _call(n: int, when: str, api: str, ip: str, *, key: str = KEY_A, fp: str = PRINT_A,
          aap: str = AAP, owner: str = OWNER, key_id: str = "", secret: str = "",
          status: int = 200) -> dict[str, Any]:  # fmt: skip
    resource = json.dumps({"key_id": key_id}) if key_id else ""
    return {
        "time": when,
        "request_id": f"e1c0ffee-0000-4000-8000-{n:012d}",
        "api_name": api,
        "status_code": status,
        "identity_type": "aap",
        "access_key_id": key,
        "access_key_fingerprint": fp,
        "principal_id": aap,
        "account_id": owner,
        "client_ip": ip,
        "instance_id": INSTANCE,
        "region_id": "cn-shanghai",
        "resource_parameters": resource,
        "resource_id": secret or key_id,
        "duration": "3.2",
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    columns = sorted({c for r in rows for c in r}, reverse=True)  # not the log's order
    lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aap") / "evidence"
    (root / "config").mkdir(parents=True)
    # Exports taken on 4 May: the AAP with one policy (secrets of billing, one key),
    # its network rule, and its two client keys.
    (root / "config" / "describe-aap.json").write_text(json.dumps({
        "RequestId": "bcfefe15-46f0-44a3-bd96-3d422474b71a",
        "Arn": f"acs:kms:cn-shanghai:{OWNER}:applicationaccesspoint/{AAP}",
        "Name": AAP, "Description": "billing service", "AuthenticationMethod": "ClientKey",
        "Policies": json.dumps([POLICY]),
    }))  # fmt: skip
    (root / "config" / "policy-and-network.json").write_text(json.dumps([
        {"RequestId": "f455324b-e229-4066-9f58-9c1cf3fe83a9",
         "Arn": f"acs:kms:cn-shanghai:{OWNER}:policy/{POLICY}", "Name": POLICY,
         "KmsInstance": INSTANCE,
         "Permissions": ["RbacPermission/Template/CryptoServiceSecretUser",
                         "RbacPermission/Template/CryptoServiceKeyUser"],
         "Resources": ["secret/billing/*", f"key/{KEY_1}", "secret/billing-archive/*"],
         "AccessControlRules": json.dumps({"NetworkRules": [RULE]})},
        # DescribeNetworkRule has no Name: the name is the ARN's last part.
        {"RequestId": "3bf02f7a-015b-4f93-be0f-cc043fda2d33",
         "Arn": f"acs:kms:cn-shanghai:{OWNER}:network/{RULE}", "Type": "Private",
         "Description": "billing subnet", "SourcePrivateIp": '["172.16.4.0/24","172.16.9.17"]'},
    ], indent=1))  # fmt: skip
    (root / "config" / "client-keys.json").write_text(json.dumps({
        "headers": {"content-type": "application/json"}, "statusCode": 200,
        "body": {"RequestId": "2312e45f-b2fa-4c34-ad94-3eca50932916", "ClientKeys": {
            "ClientKey": [
                {"ClientKeyId": KEY_A, "AapName": AAP, "CreateTime": "2025-11-02T09:14:38Z",
                 "NotBefore": "2025-11-02T09:14:33Z", "NotAfter": "2030-11-02T09:14:33Z",
                 "KeyAlgorithm": "RSA_2048", "KeyOrigin": "KMS_PROVIDED",
                 "PublicKeyData": "-----BEGIN CERTIFICATE-----\\nMIID-----END CERTIFICATE-----"},
                {"ClientKeyId": KEY_B, "AapName": AAP, "CreateTime": "2026-01-20T10:00:00Z",
                 "KeyAlgorithm": "RSA_2048", "KeyOrigin": "KMS_PROVIDED"}]}},
    }))  # fmt: skip
    (root / "config" / "notes.jsonl").write_bytes(b'{"RequestId": "x", "Name": "half\n')
    events = [
        # 06:00 the policy is broadened to every secret and key, from a new address.
        _event(1, "UpdatePolicy", "2026-05-04T06:00:00Z",
               {"Name": POLICY, "Resources": '["secret/*","key/*"]',
                "RegionId": "cn-shanghai"}),
        # 07:00 client key B is deleted.
        _event(2, "DeleteClientKey", "2026-05-04T07:00:00Z", {"ClientKeyId": KEY_B}),
        # A failed update changes nothing.
        _event(3, "UpdateNetworkRule", "2026-05-04T07:30:00Z",
               {"Name": RULE, "SourcePrivateIp": '["0.0.0.0/0"]'},
               errorCode="Forbidden.NoPermission", errorMessage="denied"),
    ]  # fmt: skip
    page = {"RequestId": "0D3B2A7C", "NextToken": "", "Events": events}
    (root / "trail-lookup.json").write_text(json.dumps(page))
    calls = [
        _call(1, "2026-05-04T01:00:00Z", "GetSecretValue", "172.16.4.10",
              secret="billing/db-password", key_id=KEY_1),
        _call(2, "2026-05-04T01:05:00Z", "Decrypt", "172.16.9.17", key_id=KEY_1),
        # before the broadening: a secret outside billing/* (not allowed then)
        _call(3, "2026-05-04T02:00:00Z", "GetSecretValue", "172.16.4.11",
              secret="hr/payroll-token", key_id=KEY_2),
        # after it: the same secret is allowed, but from outside the network rule
        _call(4, "2026-05-04T06:20:00Z", "GetSecretValue", "192.0.2.66",
              secret="hr/payroll-token", key_id=KEY_2),
        _call(5, "2026-05-04T06:21:00Z", "Decrypt", "192.0.2.66", key_id=KEY_2),
        # key B used after its deletion (no AAP name: 'AAP not found'), and by its
        # fingerprint alone
        _call(6, "2026-05-04T08:00:00Z", "Decrypt", "172.16.4.12", key=KEY_B, fp=PRINT_B,
              aap="", owner="", key_id=KEY_1),
        _call(7, "2026-05-04T08:01:00Z", "Decrypt", "172.16.4.12", key="", fp=PRINT_B,
              aap="", owner="", key_id=KEY_1),
        # refused calls are not use
        _call(8, "2026-05-04T08:30:00Z", "GetSecretValue", "192.0.2.66",
              secret="hr/other", status=403),
        # another AAP of the account, with no configuration in the evidence
        _call(9, "2026-05-04T03:00:00Z", "GetSecretValue", "172.16.7.5", aap="aap_hr",
              key=KEY_C, fp=PRINT_B[::-1], secret="hr/salaries", key_id=KEY_2),
    ]  # fmt: skip
    (root / "kms-export.csv").write_bytes(_csv(calls))
    return root


@pytest.fixture(scope="module")
def case(folder: Path) -> kf.Case:
    with pytest.warns(kf.ParseWarning):  # notes.jsonl is damaged
        return kf.load(folder, progress=False)


def _interval(config: pd.DataFrame, item: str, value: str) -> list[tuple[str, str]]:
    rows = config[(config["item"] == item) & (config["value"] == value)]
    return [(str(r.since), str(r.until)) for r in rows.itertuples()]


def test_configuration_from_exports_then_events(case: kf.Case) -> None:
    config = kf.aap_config(case, exported_at=EXPORTED)
    assert set(config["aap"]) == {AAP} and set(config["account_id"]) == {OWNER}
    start = "2026-05-04 00:00:00+00:00"
    broadened = "2026-05-04 06:00:00+00:00"
    assert _interval(config, "resource", "secret/billing/*") == [(start, broadened)]
    assert _interval(config, "resource", "secret/*") == [(broadened, "NaT")]
    # the network rule named only in its ARN, with both addresses, unchanged by the
    # failed UpdateNetworkRule
    networks = config[config["item"] == "network"]
    assert sorted(networks["value"]) == ["172.16.4.0/24", "172.16.9.17"]
    assert set(networks["network_rule"]) == {RULE} and networks["until"].isna().all()
    assert set(config.loc[config["item"] == "permission", "value"]) == {
        "CryptoServiceSecretUser", "CryptoServiceKeyUser"}  # fmt: skip
    # both keys from the export (the AAP is known from then); key B until DeleteClientKey
    assert _interval(config, "client-key", KEY_A) == [(start, "NaT")]
    assert _interval(config, "client-key", KEY_B) == [(start, "2026-05-04 07:00:00+00:00")]
    changed = config[config["value"] == "secret/*"].iloc[0]
    assert changed["source"] == "actiontrail" and changed["evidence"].startswith("0C5A9F1E")
    assert config.loc[config["value"] == "secret/billing/*", "source"].item() == "export"
    files = {Path(f["source_file"]).name for f in config.attrs["exports"]}
    assert files == {"describe-aap.json", "policy-and-network.json", "client-keys.json"}
    # the loader kept the exports as a record kind of their own, loaded in the manifest
    manifest = case.manifest.assign(name=case.manifest["path"].map(lambda p: Path(p).name))
    loaded = manifest.set_index("name")
    assert loaded.loc["policy-and-network.json", "records_loaded"] == 2
    assert loaded.loc["client-keys.json", "format"].endswith("aap-config")
    assert loaded.loc["notes.jsonl", "status"] == "rejected"  # damaged: in the issues
    assert case.issues["source_file"].str.endswith("notes.jsonl").all()


def test_without_exports_only_the_events_are_known(case: kf.Case, tmp_path: Path) -> None:
    config = kf.aap_config(case, exports=[tmp_path])  # an empty folder: no export
    assert config.empty  # an UpdatePolicy alone names no AAP it belongs to


def test_exports_given_by_name_are_read_with_their_problems(folder: Path) -> None:
    events_only = kf.load(folder / "trail-lookup.json", progress=False)
    config = kf.aap_config(events_only, exports=[folder / "config"], exported_at=EXPORTED)
    assert set(config["value"]) >= {"secret/billing/*", "secret/*", "172.16.4.0/24", KEY_A}
    assert [Path(p["source_file"]).name for p in config.attrs["problems"]] == ["notes.jsonl"]
    assert all(len(f["sha256"]) == 64 for f in config.attrs["exports"])


def _checks(review: pd.DataFrame, check: str) -> pd.DataFrame:
    return review[review["check"] == check]


def test_review_allowed_against_used(case: kf.Case) -> None:
    review = kf.aap_review(case, exported_at=EXPORTED)
    assert set(review["aap"]) == {AAP, "aap_hr"}
    assert _checks(review, "no-configuration")["aap"].tolist() == ["aap_hr"]
    review = review[review["aap"] == AAP]
    use = _checks(review, "use").iloc[0]
    assert use["count"] == 8  # all eight calls, two of them found by key and fingerprint
    assert str(use["first_seen"]) == "2026-05-04 01:00:00+00:00"
    assert str(use["last_seen"]) == "2026-05-04 08:30:00+00:00"
    widened = _checks(review, "widened")
    assert sorted(widened["resource"]) == ["key/*", "secret/*"]
    assert widened["evidence"].tolist() == [["0C5A9F1E-7D3B-4E2A-9B6C-000000000001"]] * 2
    denied = _checks(review, "used-not-allowed")
    assert denied[["resource", "operation"]].values.tolist() == [
        ["secret/hr/payroll-token", "GetSecretValue"]]  # fmt: skip
    assert denied["evidence"].item() == ["e1c0ffee-0000-4000-8000-000000000003"]
    outside = _checks(review, "outside-network")
    assert outside["client_ip"].tolist() == ["192.0.2.66"] and outside["count"].item() == 2
    inside = _checks(review, "inside-network")
    assert set(inside["client_ip"]) == {"172.16.4.10", "172.16.4.11", "172.16.4.12", "172.16.9.17"}
    late = _checks(review, "used-after-deletion")
    assert late["client_key"].tolist() == [KEY_B] and late["count"].item() == 2
    used = _checks(review, "allowed-used").set_index("resource")
    assert used.loc["secret/billing/*", "count"] == 1
    assert "narrow" in used.loc["key/*", "detail"]
    unused = _checks(review, "allowed-unused")
    assert unused["resource"].tolist() == ["secret/billing-archive/*"]
    assert "06:00:00" in unused["detail"].item()  # in force until the broadening


def test_calls_say_how_each_was_attributed(case: kf.Case) -> None:
    calls = kf.aap.calls(case, kf.aap.configuration(case, exported_at=EXPORTED))
    by = calls.set_index("request_id")["attributed_by"]
    assert by["e1c0ffee-0000-4000-8000-000000000001"] == "aap name"
    assert by["e1c0ffee-0000-4000-8000-000000000006"] == "client key"
    assert by["e1c0ffee-0000-4000-8000-000000000007"] == "fingerprint"
    assert calls.attrs["unattributed"] == 0


def test_rules_on_the_aap_findings(case: kf.Case) -> None:
    findings = kf.detect(case, rules=["D31", "D32", "D33"])
    by_rule = {r: g for r, g in findings.groupby("rule_id")}
    outside = by_rule["D31"].iloc[0]
    assert outside["entity"] == f"aap:{OWNER}/{AAP}" and outside["event_count"] == 2
    assert set(outside["evidence"]) == {
        "e1c0ffee-0000-4000-8000-000000000004",
        "e1c0ffee-0000-4000-8000-000000000005",
    }
    widened = by_rule["D32"].iloc[0]
    # the UpdatePolicy and the one call that touched a resource not used before (key 2)
    assert set(widened["evidence"]) == {
        "0C5A9F1E-7D3B-4E2A-9B6C-000000000001",
        "e1c0ffee-0000-4000-8000-000000000005",
    }
    assert "UpdatePolicy" in widened["summary"] and "key/*" in widened["summary"]
    late = by_rule["D33"].iloc[0]
    assert late["entity"] == f"client-key:{KEY_B}" and late["event_count"] == 2
    assert late["severity"] == "critical"


def test_rules_find_nothing_without_aap_configuration(tmp_path: Path) -> None:
    (tmp_path / "kms.csv").write_bytes(
        _csv([_call(1, "2026-05-04T01:00:00Z", "Decrypt", "192.0.2.66", key_id=KEY_1)])
    )
    quiet = kf.load(tmp_path, progress=False)
    assert kf.detect(quiet, rules=["D31", "D32", "D33"]).empty
    review = kf.aap_review(quiet)
    assert review["check"].tolist() == ["use", "no-configuration"]


def test_graph_has_allowed_edges_and_blast_radius_says_could_or_did(case: kf.Case) -> None:
    graph = kf.build_graph(case)
    node = f"aap:{OWNER}/{AAP}"
    allowed = {(t, tuple(e["grants"])) for _, t, e in graph.out_edges(node, data=True)
               if e["relation"] == "allowed"}  # fmt: skip
    assert (f"key:{KEY_1}", (f"{POLICY}:key/*", f"{POLICY}:key/{KEY_1}")) in allowed
    # secret/* stands for the account's secrets the graph knows; billing-archive/* none
    assert (f"secret:{OWNER}/hr/payroll-token", (f"{POLICY}:secret/*",)) in allowed
    did = kf.blast_radius(graph, KEY_A)
    assert "reach" not in did.columns  # the default is unchanged
    could = kf.blast_radius(graph, KEY_A, reach="could")
    reach = could.set_index("node")["reach"]
    assert reach[f"secret:{OWNER}/hr/payroll-token"] == "did"  # key A read it
    assert reach[f"secret:{OWNER}/hr/salaries"] == "could"  # only aap_hr read it
    assert set(did["node"]) < set(could["node"])
    with pytest.raises(ValueError, match="reach"):
        kf.blast_radius(graph, KEY_A, reach="maybe")


# -- the curated incident ---------------------------------------------------------------


@pytest.fixture(scope="module")
def incident() -> tuple[dict[str, Any], kf.Case]:
    folder = kf.datasets.path("incident-leaked-ci-key")
    truth = json.loads((folder / "truth.json").read_text())
    return truth, kf.load(folder / "evidence", progress=False)


def test_curated_incident_review_shows_the_broadened_aap_and_its_abuse(
    incident: tuple[dict[str, Any], kf.Case],
) -> None:
    truth, case = incident
    facts = next(s for s in truth["scenarios"] if s["id"] == "aap-broadened")["facts"]
    review = kf.aap_review(case)
    mine = review[(review["aap"] == facts["aap"]) & (review["account_id"] == facts["account"])]
    widened = mine[mine["check"] == "widened"]
    assert set(widened["resource"]) >= set(facts["broadened_to"])
    assert facts["new_client_key"] in set(widened["client_key"])
    outside = mine[mine["check"] == "outside-network"]
    assert outside["client_ip"].tolist() == [facts["attacker_ip"]]
    calls = kf.aap.calls(case)
    theirs = calls[(calls["client_key"] == facts["new_client_key"]) & calls["ok"].astype(bool)]
    assert outside["count"].item() == len(theirs) > 0
    assert set(outside["evidence"].item()) == set(theirs["request_id"])
    # the other applications' secrets it read were allowed only by the broadened policy
    used = mine[mine["check"] == "allowed-used"].set_index("resource")
    assert "narrow" in used.loc["secret/*", "detail"]
    read = set(theirs["resource"].str.removeprefix("secret/"))
    assert read & set(facts["newly_allowed_secrets"])
    late = mine[mine["check"] == "used-after-deletion"]
    assert late["client_key"].tolist() == [facts["new_client_key"]]
    # nothing of the kind for any other AAP of the case
    others = review[review["aap"] != facts["aap"]]
    assert not others["check"].isin(["widened", "outside-network", "used-after-deletion",
                                     "used-not-allowed"]).any()  # fmt: skip
    # every AAP is covered by the exports from the start of the evidence
    assert not review["check"].eq("no-configuration").any()
    assert len(review.attrs["exports"]) == len(truth["aap_config"]["files"])
