"""Attack scenarios placed in time, each with its ground truth.

Every scenario returns the records it adds (ActionTrail events, KMS access-log
records), the effects it has on everyone else (a key disabled from then on, a trail
that stops delivering), and its truth: the steps, the detections of
``shared/docs/detections.md`` each step should trigger (``D01``...), the event and
request ids that prove it, and the facts an analyst should recover (the identity
behind a key, the secrets read, the keys touched).

Attacker addresses come from the documentation ranges of RFC 5737 (192.0.2.0/24).

Examples
--------
>>> import random
>>> from datetime import datetime, timezone
>>> from kmsforensics.synth.org import build_organisation
>>> from kmsforensics.synth.traffic import Effects, Traffic, World
>>> org = build_organisation(seed=4)
>>> start = datetime(2026, 3, 4, 17, tzinfo=timezone.utc)
>>> world = World(org, Traffic(start), random.Random(4), Effects(), background_errors=False)
>>> found = SCENARIOS["leaked-ci-key"](world, start)
>>> found.facts["leaked_access_key"] == org.user("ci-deployer").access_keys[0]
True
>>> sorted({d for step in found.steps for d in step.detections})[:4]
['D01', 'D02', 'D11', 'D12']
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .org import ClientKey, sts_key
from .traffic import SDK_AGENTS, World, iso

ATTACKER_IP = "192.0.2.66"
ATTACKER_AGENT = "aliyun-cli/3.0.198 (Linux; amd64) Go/1.21.5"
Item = tuple[datetime, str, dict[str, Any]]


@dataclass
class Step:
    """One step of an attack: when, what, which detections, and its records."""

    time: datetime
    what: str
    detections: tuple[str, ...]
    records: list[Item] = field(default_factory=list)

    def truth(self) -> dict[str, Any]:
        """Return the step as ground truth (times as ISO strings, ids of its records)."""
        return {
            "time": iso(self.time),
            "what": self.what,
            "detections": list(self.detections),
            "event_ids": [r["eventId"] for _, s, r in self.records if s == "actiontrail"],
            "request_ids": [r["request_id"] for _, s, r in self.records if s == "kms"],
        }


@dataclass
class Scenario:
    """An attack: its steps and the facts an analyst should recover."""

    scenario_id: str
    title: str
    steps: list[Step] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[Item]:
        """Every record the attack adds, in time order."""
        return sorted(
            (item for step in self.steps for item in step.records), key=lambda item: item[0]
        )

    def truth(self) -> dict[str, Any]:
        """Return the scenario as ground truth."""
        return {
            "id": self.scenario_id,
            "title": self.title,
            "facts": self.facts,
            "steps": [step.truth() for step in self.steps],
        }


def leaked_ci_key(world: World, at: datetime) -> Scenario:
    """Use a leaked CI AccessKey from a new IP to assume a prod role and read secrets."""
    org, rng = world.org, world.rng
    ci = org.user("ci-deployer")
    prod = org.account("prod")
    role = org.role("deploy-role", prod.uid)
    session, key = "debug", sts_key(rng)
    caller = {
        "type": "ram-user",
        "accountId": ci.account,
        "principalId": ci.user_id,
        "userName": ci.name,
        "accessKeyId": ci.access_keys[0],
    }
    scenario = Scenario(
        "leaked-ci-key",
        "Leaked CI AccessKey: cross-account secret theft",
        facts={
            "leaked_access_key": ci.access_keys[0],
            "user": ci.name,
            "user_account": ci.account,
            "attacker_ip": ATTACKER_IP,
            "role": role.name,
            "role_account": prod.uid,
            "sts_key": key,
        },
    )
    probe = world.event(
        at,
        "GetCallerIdentity",
        "Sts",
        caller,
        ATTACKER_IP,
        {},
        account=ci.account,
        agent=ATTACKER_AGENT,
        source="sts.aliyuncs.com",
        api_version="2015-04-01",
    )
    scenario.steps.append(
        Step(
            at,
            "the leaked key is tried from a new address",
            ("D11", "D12", "D18"),
            [(at, "actiontrail", probe)],
        )
    )
    moment = at + timedelta(minutes=2)
    assume = world.assume(
        moment, caller, ATTACKER_IP, role, session, key, account=ci.account, agent=ATTACKER_AGENT
    )
    scenario.steps.append(
        Step(
            moment,
            "it assumes deploy-role in prod (cross-account)",
            ("D19",),
            [(moment, "actiontrail", assume)],
        )
    )
    identity = _session(role, session, key, moment)
    listing = Step(moment + timedelta(minutes=1), "it lists keys and secrets", ("D17",))
    for i, api in enumerate(
        (
            "ListSecrets",
            "ListKeys",
            "ListKmsInstances",
            "ListSecrets",
            "DescribeKey",
            "ListAliases",
            "ListKeys",
            "ListSecrets",
        )
    ):
        when = listing.time + timedelta(seconds=9 * i)
        listing.records.append(
            (
                when,
                "actiontrail",
                world.event(
                    when,
                    api,
                    "Kms",
                    identity,
                    ATTACKER_IP,
                    _player(ci, role, session),
                    account=prod.uid,
                    agent=ATTACKER_AGENT,
                ),
            )
        )
    scenario.steps.append(listing)
    secrets = [s for s in org.secrets if s.account == prod.uid]
    theft = Step(
        listing.time + timedelta(minutes=3),
        "it reads 35 secrets through the shared KMS gateway with the STS key",
        ("D01", "D02", "D30"),
    )
    for i in range(35):
        secret = secrets[i % len(secrets)]
        when = theft.time + timedelta(seconds=11 * i)
        request = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        theft.records.append(
            (
                when,
                "actiontrail",
                world.event(
                    when,
                    "GetSecretValue",
                    "Kms",
                    identity,
                    ATTACKER_IP,
                    {"SecretName": secret.name, **_player(ci, role, session)},
                    account=prod.uid,
                    agent=ATTACKER_AGENT,
                    request_id=request,
                ),
            )
        )
        theft.records.append(
            (
                when,
                "kms",
                world.kms_record(
                    when,
                    "Decrypt",
                    secret.name,
                    secret.key_id,
                    secret.instance_id,
                    prod.uid,
                    ATTACKER_IP,
                    identity_type="ram-role",
                    access_key_id=key,
                    principal_id=role.role_id,
                    request_id=request,
                    share_gateway="GetSecretValue",
                ),
            )
        )
    scenario.steps.append(theft)
    scenario.facts["secrets_read"] = sorted({s.name for s in secrets[:35]})
    return scenario


def key_destruction(world: World, at: datetime) -> Scenario:
    """Destroy keys, ransomware-style: disable, schedule deletion, delete key material."""
    org, rng = world.org, world.rng
    ci = org.user("ci-deployer")
    prod = org.account("prod")
    role = org.role("deploy-role", prod.uid)
    session, key = "maint", sts_key(rng)
    caller = {
        "type": "ram-user",
        "accountId": ci.account,
        "principalId": ci.user_id,
        "userName": ci.name,
        "accessKeyId": ci.access_keys[0],
    }
    keys = [k for k in org.keys if k.account == prod.uid]
    victims = [keys[0].key_id, keys[1].key_id]
    scenario = Scenario(
        "key-destruction",
        "Key destruction (ransomware pattern)",
        facts={
            "attacker_ip": ATTACKER_IP,
            "sts_key": key,
            "keys_disabled": victims,
            "key_scheduled": keys[2].key_id,
            "key_material_deleted": keys[3].key_id,
        },
    )
    assume = world.assume(
        at, caller, ATTACKER_IP, role, session, key, account=ci.account, agent=ATTACKER_AGENT
    )
    scenario.steps.append(
        Step(
            at, "the attacker assumes deploy-role in prod", ("D19",), [(at, "actiontrail", assume)]
        )
    )
    identity = _session(role, session, key, at)
    moment = at + timedelta(minutes=4)
    protect = Step(moment, "deletion protection is removed", ("D05",))
    protect.records.append(
        (
            moment,
            "actiontrail",
            world.event(
                moment,
                "SetDeletionProtection",
                "Kms",
                identity,
                ATTACKER_IP,
                {
                    "ProtectedResourceArn": f"acs:kms:cn-hangzhou:{prod.uid}:key/{keys[2].key_id}",
                    "EnableDeletionProtection": "false",
                    **_player(ci, role, session),
                },
                account=prod.uid,
                agent=ATTACKER_AGENT,
            ),
        )
    )
    scenario.steps.append(protect)
    # The failures that follow (Rejected.Disabled) are D05's follow-up, not the
    # authorisation failures of D16.
    disable = Step(moment + timedelta(minutes=1), "two keys in daily use are disabled", ("D05",))
    for i, victim in enumerate(victims):
        when = disable.time + timedelta(seconds=20 * i)
        disable.records.append(
            (
                when,
                "actiontrail",
                world.event(
                    when,
                    "DisableKey",
                    "Kms",
                    identity,
                    ATTACKER_IP,
                    {"KeyId": victim, **_player(ci, role, session)},
                    account=prod.uid,
                    agent=ATTACKER_AGENT,
                ),
            )
        )
        world.effects.disabled_keys[victim] = when
    scenario.steps.append(disable)
    when = disable.time + timedelta(minutes=2)
    scenario.steps.append(
        Step(
            when,
            "a key is scheduled for deletion",
            ("D04",),
            [
                (
                    when,
                    "actiontrail",
                    world.event(
                        when,
                        "ScheduleKeyDeletion",
                        "Kms",
                        identity,
                        ATTACKER_IP,
                        {
                            "KeyId": keys[2].key_id,
                            "PendingWindowInDays": 7,
                            **_player(ci, role, session),
                        },
                        account=prod.uid,
                        agent=ATTACKER_AGENT,
                    ),
                )
            ],
        )
    )
    when = when + timedelta(minutes=1)
    scenario.steps.append(
        Step(
            when,
            "a key's material is deleted",
            ("D04",),
            [
                (
                    when,
                    "actiontrail",
                    world.event(
                        when,
                        "DeleteKeyMaterial",
                        "Kms",
                        identity,
                        ATTACKER_IP,
                        {"KeyId": keys[3].key_id, **_player(ci, role, session)},
                        account=prod.uid,
                        agent=ATTACKER_AGENT,
                    ),
                )
            ],
        )
    )
    return scenario


def aap_broadened(world: World, at: datetime) -> Scenario:
    """Broaden an AAP's policy, add a client key, abuse it from outside; delete it, too late.

    The policy of ``aap-payments`` (prod) is widened to every key and secret; the
    attacker also opens its network rule to ``0.0.0.0/0``, but that change is *not* in
    the evidence (it is made through a region whose trail nobody collected), so the
    new key's reads from the attacker's address are outside the network rule the
    evidence shows. The reads include other applications' secrets, which only the
    broadened policy allows. The next morning the on-call engineer deletes the new key;
    the log shows it used once more afterwards.
    """
    org, rng = world.org, world.rng
    prod = org.account("prod")
    aap = next(a for a in org.aaps if a.account == prod.uid and a.name == "aap-payments")
    admin = org.role("ResourceDirectoryAccountAccessRole", prod.uid)
    session, key = "ops-admin", sts_key(rng)
    identity = _session(admin, session, key, at)
    new_key = ClientKey(
        f"KAAP.{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "sha256-" + uuid.UUID(int=rng.getrandbits(128)).hex * 2,
    )
    own = [s for s in org.secrets if s.name in aap.secrets]
    others = [
        s
        for s in org.secrets
        if s.account == prod.uid and s.name not in aap.secrets and "/payments/" not in s.name
    ][:6]
    scenario = Scenario(
        "aap-broadened",
        "AAP broadened, new client key abused from outside, used after its deletion",
        facts={
            "aap": aap.name,
            "account": prod.uid,
            "policy": f"{aap.name}-policy",
            "broadened_to": ["secret/*", "key/*"],
            "new_client_key": new_key.key_id,
            "fingerprint": new_key.fingerprint,
            "attacker_ip": ATTACKER_IP,
            "sts_key": key,
            "network_rule_change_missing": f"{aap.name}-net",
        },
    )

    def console(when: datetime, api: str, params: dict[str, Any], who: Any = identity) -> Item:
        event = world.event(
            when,
            api,
            "Kms",
            who,
            "203.0.113.90",
            params,
            account=prod.uid,
            agent="kms.console.aliyun.com",
            event_type="ConsoleOperation",
        )
        return when, "actiontrail", event

    change = Step(at, "the AAP's policy is broadened to every key and secret", ("D08",))
    change.records.append(
        console(at, "UpdatePolicy", {"Name": f"{aap.name}-policy",
                                     "Resources": '["secret/*","key/*"]'})
    )  # fmt: skip
    scenario.steps.append(change)
    when = at + timedelta(minutes=2)
    created = console(when, "CreateClientKey", {"AapName": aap.name,
                                                "NotAfter": "2031-03-04 00:00:00 UTC"})  # fmt: skip
    created[2]["responseElements"] = {"ClientKeyId": new_key.key_id, "KeyAlgorithm": "RSA_2048"}
    scenario.steps.append(Step(when, "a new client key is created", ("D08", "D09"), [created]))
    use = Step(
        when + timedelta(minutes=25),
        "the new key reads secrets from outside the network rule, other applications' too",
        # Not the mass retrieval of D01; D32 attaches the use to the broadening.
        ("D09", "D11", "D31", "D32"),
    )
    reads = own + others
    for i in range(24):
        secret = reads[i % len(reads)]
        use.records.append(_aap_read(world, use.time + timedelta(seconds=13 * i), secret, aap,
                                     new_key, ATTACKER_IP))  # fmt: skip
    scenario.steps.append(use)
    engineer = org.role("ResourceDirectoryAccountAccessRole", prod.uid)
    oncall = _session(engineer, "oncall", sts_key(rng), at)
    deleted = at + timedelta(hours=14)
    scenario.steps.append(
        Step(deleted, "the on-call engineer deletes the new client key", ("D08",),
             [console(deleted, "DeleteClientKey", {"ClientKeyId": new_key.key_id}, oncall)])
    )  # fmt: skip
    late = Step(deleted + timedelta(minutes=40), "the deleted key is used once more", ("D33",))
    late.records.append(_aap_read(world, late.time, others[0], aap, new_key, ATTACKER_IP))
    scenario.steps.append(late)
    scenario.facts["secrets_read"] = sorted({s.name for s in reads})
    scenario.facts["newly_allowed_secrets"] = sorted(s.name for s in others)
    return scenario


def _aap_read(
    world: World, moment: datetime, secret: Any, aap: Any, key: ClientKey, ip: str
) -> Item:
    record = world.kms_record(
        moment,
        "GetSecretValue",
        secret.name,
        secret.key_id,
        secret.instance_id,
        aap.account,
        ip,
        identity_type="aap",
        access_key_id=key.key_id,
        principal_id=aap.name,
        fingerprint=key.fingerprint,
    )
    return moment, "kms", record


def console_trail_tampering(world: World, at: datetime) -> Scenario:
    """Sign in without MFA, then change the trail and stop it for hours."""
    org, rng = world.org, world.rng
    person = next(u for u in org.users if u.console and not u.mfa)
    prod = org.account("prod")
    identity = {
        "type": "ram-user",
        "accountId": person.account,
        "principalId": person.user_id,
        "userName": person.name,
    }
    where = "192.0.2.80"
    signin = world.event(
        at,
        "ConsoleSignin",
        "AasSub",
        identity,
        where,
        {},
        agent=SDK_AGENTS[0],
        event_type="ConsoleSignin",
        source="signin.aliyun.com",
    )
    signin["additionalEventData"] = {"mfaChecked": "false", "callbackUrl": "https://home"}
    scenario = Scenario(
        "console-trail-tampering",
        "Sign-in without MFA, then trail tampering",
        facts={"user": person.name, "signin_ip": where, "trail": "acme-trail", "account": prod.uid},
    )
    scenario.steps.append(
        Step(
            at,
            "a RAM user signs in without MFA from a new address",
            ("D21", "D11"),
            [(at, "actiontrail", signin)],
        )
    )
    role = org.role("ResourceDirectoryAccountAccessRole", prod.uid)
    key = sts_key(rng)
    moment = at + timedelta(minutes=1)
    switch = world.assume(
        moment,
        identity,
        where,
        role,
        person.name,
        key,
        account=person.account,
        agent="AliyunConsole",
    )
    scenario.steps.append(
        Step(moment, "they switch into prod", ("D19",), [(moment, "actiontrail", switch)])
    )
    session = _session(role, person.name, key, moment)
    tamper = Step(moment + timedelta(minutes=3), "the trail is changed, then stopped", ("D26",))
    for i, (api, params) in enumerate(
        (
            ("UpdateTrail", {"Name": "acme-trail", "OssBucketName": "acme-trail-archive-tmp"}),
            ("StopLogging", {"Name": "acme-trail"}),
        )
    ):
        when = tamper.time + timedelta(seconds=40 * i)
        tamper.records.append(
            (
                when,
                "actiontrail",
                world.event(
                    when,
                    api,
                    "Actiontrail",
                    session,
                    where,
                    params,
                    account=prod.uid,
                    agent="AliyunConsole",
                    event_type="ConsoleOperation",
                    api_version="2020-07-06",
                ),
            )
        )
    scenario.steps.append(tamper)
    stopped = tamper.records[-1][0]
    resumed = stopped + timedelta(hours=4)
    world.effects.silenced.append((prod.uid, stopped, resumed))
    defender = org.user("alice")
    restart = world.event(
        resumed,
        "StartLogging",
        "Actiontrail",
        {
            "type": "ram-user",
            "accountId": defender.account,
            "principalId": defender.user_id,
            "userName": defender.name,
        },
        defender.office_ip,
        {"Name": "acme-trail"},
        account=prod.uid,
        agent="AliyunConsole",
        event_type="ConsoleOperation",
        api_version="2020-07-06",
    )
    scenario.steps.append(
        Step(
            resumed,
            "logging is restarted; prod's trail was silent 4 h",
            ("D27",),
            [(resumed, "actiontrail", restart)],
        )
    )
    scenario.facts["silent_from"] = iso(stopped)
    scenario.facts["silent_until"] = iso(resumed)
    return scenario


def spraying_and_enumeration(world: World, at: datetime) -> Scenario:
    """Spray console passwords, guess AccessKeys, probe the instance with fake client keys."""
    org, rng = world.org, world.rng
    where = "192.0.2.99"
    people = [u for u in org.users if u.console]
    scenario = Scenario(
        "spraying-and-enumeration",
        "Password spraying and key enumeration",
        facts={"attacker_ip": where, "users_targeted": [u.name for u in people]},
    )
    spray = Step(at, "console passwords are sprayed across every user", ("D22",))
    for i in range(20):
        person = people[i % len(people)]
        when = at + timedelta(seconds=25 * i)
        identity = {
            "type": "ram-user",
            "accountId": person.account,
            "principalId": person.user_id,
            "userName": person.name,
        }
        event = world.event(
            when,
            "ConsoleSignin",
            "AasSub",
            identity,
            where,
            {},
            agent="Mozilla/5.0 (X11; Linux x86_64)",
            event_type="ConsoleSignin",
            source="signin.aliyun.com",
        )
        event["errorMessage"] = "Password is incorrect"
        event["additionalEventData"] = {"mfaChecked": "false"}
        spray.records.append((when, "actiontrail", event))
    scenario.steps.append(spray)
    guess = Step(at + timedelta(minutes=12), "AccessKey ids are guessed against STS", ("D16",))
    for i in range(15):
        when = guess.time + timedelta(seconds=4 * i)
        fake = "LTAI" + uuid.UUID(int=rng.getrandbits(128)).hex[:20]
        event = world.event(
            when,
            "GetCallerIdentity",
            "Sts",
            {"type": "unknown", "accessKeyId": fake},
            where,
            {},
            agent=ATTACKER_AGENT,
            source="sts.aliyuncs.com",
            api_version="2015-04-01",
        )
        event["errorCode"] = "InvalidAccessKeyId.NotFound"
        event["errorMessage"] = "Specified access key is not found."
        guess.records.append((when, "actiontrail", event))
    scenario.steps.append(guess)
    probe = Step(
        guess.time + timedelta(minutes=5),
        "random client keys probe the KMS instance",
        ("D15", "D16"),
    )
    instance = org.instances[-1]
    for i in range(30):
        when = probe.time + timedelta(seconds=3 * i)
        record = world.kms_record(
            when,
            "GetSecretValue",
            "prod/payments/db-password",
            "",
            instance.instance_id,
            "",
            where,
            identity_type="aap",
            access_key_id=f"KAAP.{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            principal_id="",
        )
        record.update(
            status_code=401, error_message="The client key is not found", resource_parameters=""
        )
        probe.records.append((when, "kms", record))
    scenario.steps.append(probe)
    return scenario


def _session(role: Any, session: str, key: str, moment: datetime) -> dict[str, Any]:
    return {
        "type": "assumed-role",
        "accountId": role.account,
        "principalId": f"{role.role_id}:{session}",
        "userName": f"{role.name}:{session}",
        "accessKeyId": key,
        "sessionContext": {
            "attributes": {"mfaAuthenticated": "false", "creationDate": iso(moment)}
        },
    }


def _player(user: Any, role: Any, session: str) -> dict[str, Any]:
    return {
        "stsTokenPlayerUid": int(user.account),
        "stsTokenPrincipalName": f"{role.name}/{session}",
    }


#: Scenario id -> builder.
SCENARIOS: dict[str, Callable[[World, datetime], Scenario]] = {
    "leaked-ci-key": leaked_ci_key,
    "key-destruction": key_destruction,
    "aap-broadened": aap_broadened,
    "console-trail-tampering": console_trail_tampering,
    "spraying-and-enumeration": spraying_and_enumeration,
}
