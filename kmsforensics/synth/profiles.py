"""The ``fintech`` organisation profile: what a bigger, busier organisation does daily.

``build_organisation(seed, profile="fintech")`` is the ``acme`` organisation plus:

* a fourth account (``acme-data``) with its own KMS instance, keys, secrets, AAPs and
  workloads;
* three SREs who sign in to the console every working day and hop through a
  ``sre-jump-role`` in shared-services into ``sre-admin-role`` in the member accounts
  (role chains across accounts), and who also use the CLI from their Macs;
* one SRE on call every night, working at 03:00 local time from the VPN egress;
* a nightly CI runner (an ECS instance in shared-services with ``ci-runner-role``)
  that chains into ``terraform-role`` in every member account and runs a Terraform
  plan (bursts of List/Describe calls, a few secret reads);
* an office NAT: every person's traffic leaves through one address;
* lunch breaks (no console work from 12:00 to 13:00 local);
* AccessKey rotations (the CI user's and the prod backup agent's keys, day 5 and 6);
* a new hire (``ivan``) created on day 4 (CreateUser, CreateLoginProfile,
  AddUserToGroup, CreateAccessKey) who works from the office after that;
* a Terraform apply that creates a role and sets a policy version (day 7).

Everything is drawn from the world's seeded random stream, so the same seed gives
the same case; the ``acme`` profile's output is untouched by this module.

Examples
--------
>>> from kmsforensics.synth.org import build_organisation
>>> org = build_organisation(seed=3, profile="fintech")
>>> sorted(a.purpose for a in org.accounts)
['data', 'dev', 'prod', 'shared-services']
>>> len({u.office_ip for u in org.users if u.console})  # the office NAT
1
>>> org.role("sre-jump-role").account == org.account("shared-services").uid
True
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .org import (
    REGION_CODE,
    Aap,
    Account,
    Key,
    KmsInstance,
    Organisation,
    RamUser,
    Role,
    Secret,
    Workload,
    sts_key,
)

if TYPE_CHECKING:
    from .org import _Ids
    from .scenarios import Scenario
    from .traffic import World

Item = tuple[datetime, str, dict[str, Any]]
OFFICE_NAT = "203.0.113.8"
VPN_EGRESS = "203.0.113.9"
RUNNER_IP = "10.30.1.5"
SRES = ("sre-fang", "sre-gao", "sre-hu")
NEW_HIRE = "ivan"
CLI_MAC = "aliyun-cli/3.0.190 (Darwin; arm64) Go/1.21.5"
TERRAFORM = (
    "Terraform/1.9.5 (+https://www.terraform.io) Terraform-Plugin-SDK/2.10.1 "
    "terraform-provider-alicloud/1.230.0"
)
CONSOLE = "AliyunConsole"
#: Days after the case's start of the one-off events (hire, rotations, apply).
HIRE_DAY, CI_ROTATION_DAY, BACKUP_ROTATION_DAY, APPLY_DAY = 3, 4, 5, 6
PLAN_APIS = (
    "ListKeys",
    "DescribeKey",
    "ListAliases",
    "GetKeyPolicy",
    "ListSecrets",
    "DescribeSecret",
    "GetSecretPolicy",
    "ListKmsInstances",
    "GetKmsInstance",
    "ListApplicationAccessPoints",
    "DescribeApplicationAccessPoint",
    "ListNetworkRules",
)


def extend_fintech(org: Organisation, ids: _Ids) -> None:
    """Add the fintech profile's accounts, people, roles and runner to ``org``."""
    org.profile = "fintech"
    shared = org.account("shared-services")
    data = Account(ids.uid(), "acme-data", "data")
    org.accounts.append(data)
    # everyone works behind the office NAT
    org.users = [replace(u, office_ip=OFFICE_NAT) if u.console else u for u in org.users]
    for name in (*SRES, NEW_HIRE):
        org.users.append(
            RamUser(shared.uid, ids.principal(), name, (ids.access_key(),), True, True, OFFICE_NAT)
        )
    org.roles += [
        Role(shared.uid, ids.principal(), "sre-jump-role", (shared.uid,)),
        Role(shared.uid, ids.principal(), "ci-runner-role", ("ecs.aliyuncs.com",)),
    ]
    for account in (org.account("dev"), org.account("prod"), data):
        org.roles += [
            Role(account.uid, ids.principal(), "sre-admin-role", (shared.uid,)),
            Role(account.uid, ids.principal(), "terraform-role", (shared.uid,)),
        ]
    org.roles += [
        Role(data.uid, ids.principal(), "deploy-role", (shared.uid,)),
        Role(data.uid, ids.principal(), "ResourceDirectoryAccountAccessRole", (shared.uid,)),
        Role(data.uid, ids.principal(), "payments-ecs-role", ("ecs.aliyuncs.com",)),
        Role(
            data.uid,
            ids.principal(),
            "AliyunServiceRoleForActionTrail",
            ("actiontrail.aliyuncs.com",),
            service_linked=True,
        ),
    ]
    org.workloads += [
        Workload(data.uid, f"i-{ids.lower(20)}", "ecs", "payments-ecs-role", (f"10.18.1.{n}",))
        for n in (10, 11)
    ]
    instance = KmsInstance(data.uid, f"kst-{REGION_CODE}{ids.lower(17)}")
    org.instances.append(instance)
    keys = [
        Key(data.uid, instance.instance_id, f"key-{REGION_CODE}{ids.lower(17)}", (), "AES")
        for _ in range(4)
    ]
    keys = [replace(k, versions=(f"{k.key_id}-{ids.lower(6)}",)) for k in keys]
    org.keys += keys
    names = [f"data/{app}/{thing}" for app in ("etl", "warehouse", "ml") for thing in ("db", "api")]
    secrets = [
        Secret(data.uid, instance.instance_id, n, keys[i % 4].key_id) for i, n in enumerate(names)
    ]
    org.secrets += secrets
    org.aaps.append(
        Aap(
            data.uid,
            instance.instance_id,
            "aap-etl",
            tuple(ids.client_key() for _ in range(2)),
            ("10.18.1.0/24",),
            tuple(k.key_id for k in keys),
            tuple(s.name for s in secrets if "/etl/" in s.name),
        )
    )
    org.runners.append(
        Workload(shared.uid, f"i-{ids.lower(20)}", "ecs", "ci-runner-role", (RUNNER_IP,))
    )


class FintechActivity:
    """The fintech profile's everyday activity, an hour at a time (see the module doc)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.org = world.org
        self.nights = 0
        self.runner_session: tuple[str, datetime] = ("", world.traffic.start)

    def hour(self, begin: datetime) -> list[Item]:
        """Return the profile's activity for the hour starting at ``begin``."""
        w = self.world
        local = begin + timedelta(hours=w.traffic.utc_offset_hours)
        day = (begin - w.traffic.start).days
        working = local.weekday() < 5
        out: list[Item] = []
        people = [
            u for u in self.org.users if u.name in SRES or (u.name == NEW_HIRE and day > HIRE_DAY)
        ]
        if working and 9 <= local.hour < 18 and local.hour != 12:
            for person in people:
                if w.rng.random() < 0.5:
                    out += self.sre_jump(person, w._moment(begin), OFFICE_NAT, CONSOLE)
                if w.rng.random() < 0.25:
                    out += self.cli_check(person, w._moment(begin), OFFICE_NAT)
        if local.hour == 3:
            person = self.org.user(SRES[day % len(SRES)])
            moment = begin + timedelta(minutes=w.rng.randrange(0, 20))
            out += self.cli_check(person, moment, VPN_EGRESS)
            out += self.sre_jump(person, moment + timedelta(minutes=2), VPN_EGRESS, CLI_MAC)
        if local.hour == 2:
            out += self.nightly_plan(begin + timedelta(minutes=w.rng.randrange(0, 10)))
        if local.hour == 10 and day == HIRE_DAY:
            out += self.hire(begin + timedelta(minutes=5))
        if local.hour == 11 and day == CI_ROTATION_DAY:
            out += self.rotate("ci-deployer", begin + timedelta(minutes=7))
        if local.hour == 11 and day == BACKUP_ROTATION_DAY:
            out += self.rotate("backup-agent", begin + timedelta(minutes=9))
        if local.hour == 2 and day == APPLY_DAY:
            out += self.apply(begin + timedelta(minutes=30))
        return out

    # -- people --------------------------------------------------------------------------

    def _user_identity(self, person: RamUser, at: datetime | None = None) -> dict[str, Any]:
        """Return the person's identity; with ``at``, signing with their AccessKey of that time."""
        identity = {
            "type": "ram-user",
            "accountId": person.account,
            "principalId": person.user_id,
            "userName": person.name,
        }
        if at is not None:
            identity["accessKeyId"] = self.world.current_key(person, at)
        return identity

    def cli_check(self, person: RamUser, moment: datetime, ip: str) -> list[Item]:
        """Return the CLI's start-up check with the person's AccessKey (GetCallerIdentity)."""
        event = self.world.event(
            moment,
            "GetCallerIdentity",
            "Sts",
            self._user_identity(person, moment),
            ip,
            {},
            account=person.account,
            agent=CLI_MAC,
            source="sts.aliyuncs.com",
            api_version="2015-04-01",
        )
        return [(moment, "actiontrail", event)]

    def sre_jump(self, person: RamUser, moment: datetime, ip: str, agent: str) -> list[Item]:
        """Person -> sre-jump-role (shared) -> sre-admin-role (a member) -> a few KMS calls."""
        w = self.world
        shared = self.org.account("shared-services")
        jump = self.org.role("sre-jump-role", shared.uid)
        target = self.org.account(w.rng.choice(("prod", "prod", "dev", "data")))
        admin = self.org.role("sre-admin-role", target.uid)
        key1, key2 = sts_key(w.rng), sts_key(w.rng)
        caller = self._user_identity(person, moment if agent != CONSOLE else None)
        out: list[Item] = [
            (
                moment,
                "actiontrail",
                w.assume(
                    moment, caller, ip, jump, person.name, key1, account=shared.uid, agent=agent
                ),
            )
        ]
        hop = moment + timedelta(seconds=20)
        jump_identity = _session(jump, person.name, key1, moment)
        out.append(
            (
                hop,
                "actiontrail",
                w.assume(
                    hop,
                    jump_identity,
                    ip,
                    admin,
                    person.name,
                    key2,
                    account=shared.uid,
                    agent=agent,
                ),
            )
        )
        identity = _session(admin, person.name, key2, hop)
        for step in range(w.rng.randrange(2, 6)):
            later = hop + timedelta(seconds=30 * (step + 1))
            api = w.rng.choice(("DescribeKey", "ListSecrets", "GetSecretValue", "DescribeSecret"))
            params: dict[str, Any] = {}
            if api == "DescribeKey":
                params["KeyId"] = w._zipf(
                    [k for k in self.org.keys if k.account == target.uid]
                ).key_id
            if api in ("GetSecretValue", "DescribeSecret"):
                params["SecretName"] = w._zipf(
                    [s for s in self.org.secrets if s.account == target.uid]
                ).name
            params.update(
                stsTokenPlayerUid=int(shared.uid),
                stsTokenPrincipalName=f"{admin.name}/{person.name}",
            )
            out.append(
                (
                    later,
                    "actiontrail",
                    w.event(
                        later,
                        api,
                        "Kms",
                        identity,
                        ip,
                        params,
                        account=target.uid,
                        agent=agent,
                        event_type="ConsoleOperation" if agent == CONSOLE else "ApiCall",
                    ),
                )
            )
        return out

    # -- the nightly CI runner and Terraform ------------------------------------------------

    def nightly_plan(self, moment: datetime) -> list[Item]:
        """Chain the runner's role session into terraform-role everywhere and plan."""
        w = self.world
        self.nights += 1
        runner = self.org.runners[0]
        shared = self.org.account("shared-services")
        role = self.org.role(runner.role, shared.uid)
        key = sts_key(w.rng)
        system = {"type": "system", "userName": "ecs.aliyuncs.com"}
        event = w.assume(
            moment,
            system,
            "ecs.aliyuncs.com",
            role,
            runner.name,
            key,
            account=shared.uid,
            agent="ecs.aliyuncs.com",
        )
        event["eventType"] = "AliyunServiceEvent"
        out: list[Item] = [(moment, "actiontrail", event)]
        runner_identity = _session(role, runner.name, key, moment)
        self.runner_session = (key, moment)
        for index, purpose in enumerate(("dev", "prod", "data")):
            target = self.org.account(purpose)
            tf = self.org.role("terraform-role", target.uid)
            session = f"tf-nightly-{self.nights:04d}"
            tf_key = sts_key(w.rng)
            at = moment + timedelta(minutes=1 + 4 * index)
            out.append(
                (
                    at,
                    "actiontrail",
                    w.assume(
                        at,
                        runner_identity,
                        RUNNER_IP,
                        tf,
                        session,
                        tf_key,
                        account=shared.uid,
                        agent=TERRAFORM,
                    ),
                )
            )
            identity = _session(tf, session, tf_key, at)
            calls = [a for a in PLAN_APIS if w.rng.random() < 0.8]
            secrets = [s for s in self.org.secrets if s.account == target.uid][:4]
            for step, api in enumerate(calls + ["GetSecretValue"] * len(secrets)):
                later = at + timedelta(seconds=3 + 2 * step)
                params: dict[str, Any] = {}
                if api == "GetSecretValue":
                    params["SecretName"] = secrets[step - len(calls)].name
                elif api == "DescribeKey":
                    params["KeyId"] = w._zipf(
                        [k for k in self.org.keys if k.account == target.uid]
                    ).key_id
                params.update(
                    stsTokenPlayerUid=int(shared.uid), stsTokenPrincipalName=f"{tf.name}/{session}"
                )
                out.append(
                    (
                        later,
                        "actiontrail",
                        w.event(
                            later,
                            api,
                            "Kms",
                            identity,
                            RUNNER_IP,
                            params,
                            account=target.uid,
                            agent=TERRAFORM,
                        ),
                    )
                )
        return out

    def apply(self, moment: datetime) -> list[Item]:
        """Apply Terraform in the data account: a new role, a policy version set."""
        w = self.world
        data = self.org.account("data")
        tf = self.org.role("terraform-role", data.uid)
        session = f"tf-apply-{self.nights:04d}"
        key = sts_key(w.rng)
        runner = self.org.runners[0]
        shared = self.org.account("shared-services")
        runner_key, since = self.runner_session  # the night's session, renewed hourly
        role = self.org.role(runner.role, shared.uid)
        runner_identity = _session(role, runner.name, runner_key, since)
        out: list[Item] = [
            (
                moment,
                "actiontrail",
                w.assume(
                    moment,
                    runner_identity,
                    RUNNER_IP,
                    tf,
                    session,
                    key,
                    account=shared.uid,
                    agent=TERRAFORM,
                ),
            )
        ]
        identity = _session(tf, session, key, moment)
        for step, (api, params) in enumerate(
            (
                ("CreateRole", {"RoleName": "reporting-ecs-role"}),
                ("CreatePolicyVersion", {"PolicyName": "reporting-read", "SetAsDefault": "false"}),
                ("SetDefaultPolicyVersion", {"PolicyName": "reporting-read", "VersionId": "v2"}),
                (
                    "AttachPolicyToRole",
                    {"RoleName": "reporting-ecs-role", "PolicyName": "reporting-read"},
                ),
            )
        ):
            later = moment + timedelta(seconds=10 + 5 * step)
            out.append(
                (
                    later,
                    "actiontrail",
                    w.event(
                        later,
                        api,
                        "Ram",
                        identity,
                        RUNNER_IP,
                        params,
                        account=data.uid,
                        agent=TERRAFORM,
                        source="ram.aliyuncs.com",
                    ),
                )
            )
        return out

    # -- identity administration -----------------------------------------------------------

    def _admin_event(self, moment: datetime, api: str, params: dict[str, Any]) -> dict[str, Any]:
        alice = self.org.user("alice")
        return self.world.event(
            moment,
            api,
            "Ram",
            self._user_identity(alice),
            OFFICE_NAT,
            params,
            account=alice.account,
            agent=CONSOLE,
            event_type="ConsoleOperation",
            source="ram.aliyuncs.com",
        )

    def hire(self, moment: datetime) -> list[Item]:
        """Alice creates the new hire's user, login, group membership and AccessKey."""
        ivan = self.org.user(NEW_HIRE)
        out: list[Item] = []
        for step, (api, params) in enumerate(
            (
                ("CreateUser", {"UserName": ivan.name}),
                ("CreateLoginProfile", {"UserName": ivan.name, "MFABindRequired": "true"}),
                ("AddUserToGroup", {"UserName": ivan.name, "GroupName": "sre"}),
                ("CreateAccessKey", {"UserName": ivan.name}),
            )
        ):
            later = moment + timedelta(seconds=40 * step)
            event = self._admin_event(later, api, params)
            if api == "CreateAccessKey":
                event["responseElements"] = {"AccessKey": {"AccessKeyId": ivan.access_keys[0]}}
            out.append((later, "actiontrail", event))
        return out

    def rotate(self, name: str, moment: datetime) -> list[Item]:
        """Rotate a machine user's AccessKey: create a new one, switch, delete the old."""
        w = self.world
        user = next(
            u
            for u in self.org.users
            if u.name == name
            and (name != "backup-agent" or u.account == self.org.account("prod").uid)
        )
        old, new = (
            w.current_key(user, moment),
            "LTAI" + uuid.UUID(int=w.rng.getrandbits(128)).hex[:20],
        )
        create = self._admin_event(moment, "CreateAccessKey", {"UserName": name})
        create["responseElements"] = {"AccessKey": {"AccessKeyId": new}}
        w.key_overrides[user.user_id] = (moment + timedelta(minutes=5), new)
        later = moment + timedelta(minutes=30)
        delete = self._admin_event(
            later, "DeleteAccessKey", {"UserName": name, "UserAccessKeyId": old}
        )
        return [(moment, "actiontrail", create), (later, "actiontrail", delete)]


def _session(role: Role, session: str, key: str, moment: datetime) -> dict[str, Any]:
    return {
        "type": "assumed-role",
        "accountId": role.account,
        "principalId": f"{role.role_id}:{session}",
        "userName": f"{role.name}:{session}",
        "accessKeyId": key,
        "sessionContext": {
            "attributes": {
                "mfaAuthenticated": "false",
                "creationDate": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        },
    }


# -- an attack that takes the SREs' own path ------------------------------------------------

VPS = "192.0.2.150"
VPS_AAP = "192.0.2.151"
VPS_AGENT = "aliyun-cli/3.0.204 (Linux; amd64) Go/1.22.1"


def sre_path_theft(world: World, at: datetime) -> Scenario:
    """Walk the SREs' daily path with a stolen SRE AccessKey and read secrets slowly.

    From a VPS: the CLI check, the SRE's own jump role into ``sre-admin-role`` in prod
    (new session names), then three secret reads an hour for two days through STS keys
    renewed every six hours (25 distinct secrets, 145 reads); a stolen AAP client key
    fails four times in eleven minutes, then works; and persistence through IMS: a new
    AccessKey and a group membership for the SRE, the new key then reading a secret.
    """
    from .scenarios import Scenario, Step

    org, rng = world.org, world.rng
    sre = org.user("sre-gao")
    shared, prod = org.account("shared-services"), org.account("prod")
    jump, admin = org.role("sre-jump-role", shared.uid), org.role("sre-admin-role", prod.uid)
    caller = {
        "type": "ram-user",
        "accountId": sre.account,
        "principalId": sre.user_id,
        "userName": sre.name,
        "accessKeyId": sre.access_keys[0],
    }
    scenario = Scenario(
        "sre-path-theft",
        "A stolen SRE key walks the SRE path and reads secrets slowly",
        facts={"user": sre.name, "leaked_access_key": sre.access_keys[0], "attacker_ip": VPS},
    )
    probe = world.event(
        at,
        "GetCallerIdentity",
        "Sts",
        caller,
        VPS,
        {},
        account=sre.account,
        agent=VPS_AGENT,
        source="sts.aliyuncs.com",
        api_version="2015-04-01",
    )
    scenario.steps.append(
        Step(
            at,
            "the stolen SRE key is checked from a VPS",
            ("D11", "D12", "D18"),
            [(at, "actiontrail", probe)],
        )
    )
    secrets = [s for s in org.secrets if s.account == prod.uid][:15]
    secrets += [s for s in org.secrets if s.account == org.account("dev").uid][:10]
    theft = Step(at + timedelta(minutes=3), "three secret reads an hour for two days", ("D01",))
    chain = Step(
        at + timedelta(minutes=2),
        "the SRE path: jump role, then sre-admin-role in prod",
        ("D19", "D20", "D30"),
    )
    reads = 0
    for renewal in range(8):  # every six hours for two days
        moment = at + timedelta(minutes=2, hours=6 * renewal)
        key1, key2 = sts_key(rng), sts_key(rng)
        session = f"gao-{renewal:02d}"
        first = world.assume(
            moment, caller, VPS, jump, session, key1, account=shared.uid, agent=VPS_AGENT
        )
        hop = moment + timedelta(seconds=15)
        second = world.assume(
            hop,
            _session(jump, session, key1, moment),
            VPS,
            admin,
            session,
            key2,
            account=shared.uid,
            agent=VPS_AGENT,
        )
        chain.records += [(moment, "actiontrail", first), (hop, "actiontrail", second)]
        identity = _session(admin, session, key2, hop)
        for hour in range(6):
            for n in range(3):
                if reads >= 145:
                    break
                when = hop + timedelta(hours=hour, minutes=5 + 17 * n, seconds=rng.randrange(60))
                secret = secrets[reads % len(secrets)]
                account = secret.account
                request = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                params = {
                    "SecretName": secret.name,
                    "stsTokenPlayerUid": int(shared.uid),
                    "stsTokenPrincipalName": f"{admin.name}/{session}",
                }
                theft.records.append(
                    (
                        when,
                        "actiontrail",
                        world.event(
                            when,
                            "GetSecretValue",
                            "Kms",
                            identity,
                            VPS,
                            params,
                            account=account,
                            agent=VPS_AGENT,
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
                            account,
                            VPS,
                            identity_type="ram-role",
                            access_key_id=key2,
                            principal_id=admin.role_id,
                            request_id=request,
                            share_gateway="GetSecretValue",
                        ),
                    )
                )
                reads += 1
    scenario.steps += [chain, theft]
    scenario.facts["secrets_read"] = sorted({s.name for s in secrets})
    # a stolen client key: four failures in eleven minutes, then success
    aap = next(a for a in org.aaps if a.account == prod.uid and a.name == "aap-orders")
    client = aap.client_keys[0]
    moment = at + timedelta(hours=9)
    tries = Step(
        moment, "a stolen AAP client key fails four times, then works from a VPS", ("D15",)
    )
    for n in range(5):
        when = moment + timedelta(minutes=[0, 3, 7, 11, 12][n])
        record = world.kms_record(
            when,
            "GetSecretValue",
            aap.secrets[0],
            "",
            aap.instance_id,
            prod.uid,
            VPS_AAP,
            identity_type="aap",
            access_key_id=client.key_id,
            principal_id=aap.name,
            fingerprint=client.fingerprint,
        )
        if n < 4:
            record.update(
                status_code=401, error_message="Rejected.Unauthorized: invalid client key signature"
            )
        tries.records.append((when, "kms", record))
    scenario.steps.append(tries)
    # persistence through IMS, and the new key used
    moment = at + timedelta(hours=20)
    session = "gao-persist"
    new_key = "LTAI" + uuid.UUID(int=rng.getrandbits(128)).hex[:20]
    persist = Step(
        moment, "IMS: a new AccessKey and an admin group for the SRE, then used", ("D28",)
    )
    changes: tuple[tuple[str, dict[str, Any]], ...] = (
        ("CreateAccessKey", {"UserName": sre.name}),
        ("AddUserToGroup", {"UserName": sre.name, "GroupName": "admins"}),
    )
    for step, (api, params) in enumerate(changes):
        when = moment + timedelta(seconds=30 * step)
        event = world.event(
            when,
            api,
            "Ims",
            caller,
            VPS,
            params,
            account=sre.account,
            agent=VPS_AGENT,
            source="ims.aliyuncs.com",
        )
        if api == "CreateAccessKey":
            event["responseElements"] = {"AccessKey": {"AccessKeyId": new_key}}
        persist.records.append((when, "actiontrail", event))
    when = moment + timedelta(minutes=10)
    secret = next(s for s in org.secrets if s.account == prod.uid)
    user_with_new_key = {**caller, "accessKeyId": new_key}
    request = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    persist.records.append(
        (
            when,
            "actiontrail",
            world.event(
                when,
                "GetSecretValue",
                "Kms",
                user_with_new_key,
                VPS,
                {"SecretName": secret.name},
                account=prod.uid,
                agent=VPS_AGENT,
                request_id=request,
            ),
        )
    )
    scenario.steps.append(persist)
    scenario.facts["new_access_key"] = new_key
    return scenario


#: The profile's scenarios (they need its roles), by id.
FINTECH_SCENARIOS = {"sre-path-theft": sre_path_theft}
