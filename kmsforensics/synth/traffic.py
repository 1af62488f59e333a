"""Normal, everyday activity of a synthetic organisation, hour by hour, in time order.

Who does what (all of it seeded, so the same seed gives the same events):

* applications decrypt, encrypt, generate data keys and read secrets through the KMS
  instance with AAP client keys, from their own subnets (KMS access log);
* ECS and ACK workloads read secrets through the shared KMS gateway with their role's
  STS credentials, renewed every hour by an ``AssumeRole`` that ActionTrail records
  (both logs; the same request id in both);
* a backup agent generates data keys with its permanent AccessKey;
* the CI user deploys a few times a working day: it assumes ``deploy-role`` in dev or
  prod (cross-account) and reads a few keys and secrets with the session's STS key;
* people sign in to the console (some without MFA), switch into member accounts and
  browse keys and secrets;
* ActionTrail assumes its service-linked role to deliver logs.

Activity follows working hours in UTC+8 with quieter nights and weekends, Zipf-skewed
popularity of keys and secrets, SDK and console user agents, log-normal latency and a
background rate of errors (throttling, NoPermission).

Examples
--------
>>> from datetime import datetime, timezone
>>> from kmsforensics.synth.org import build_organisation
>>> org = build_organisation(seed=1)
>>> start = datetime(2026, 3, 2, tzinfo=timezone.utc)
>>> records = list(normal_traffic(org, Traffic(start, hours=6, kms_per_hour=50), seed=1))
>>> {source for source, _ in records} == {"actiontrail", "kms"}
True
>>> times = [r.get("eventTime") or r.get("time") for _, r in records]
>>> times == sorted(times)
True
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .org import Aap, Organisation, Role, Workload, sts_key

Record = tuple[str, dict[str, Any]]
SDK_AGENTS = (
    "AlibabaCloud (Linux; amd64) Java/1.8.0_352-b08 Core/4.6.3 HTTPClient/ApacheHttpClient",
    "AlibabaCloud (Linux; amd64) Python/3.11.7 Core/2.13.3 python-requests/2.31.0",
    "AlibabaCloud (linux; amd64) Golang/1.21.5 Core/0.01 TeaDSL/1",
)
CONSOLE_AGENTS = ("AliyunConsole", "kms.console.aliyun.com")
BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
INSTANCE_APIS = (
    "Decrypt",
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GetSecretValue",
    "GetSecretValue",
)


@dataclass
class Effects:
    """What an attack changes for everyone else: keys disabled, trails stopped."""

    disabled_keys: dict[str, datetime] = field(default_factory=dict)
    #: (account, from, until): that account's trail delivers nothing in between.
    silenced: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def disabled(self, key_id: str, moment: datetime) -> bool:
        """Tell whether ``key_id`` is disabled at ``moment``."""
        since = self.disabled_keys.get(key_id)
        return since is not None and moment >= since

    def silent(self, event: dict[str, Any], moment: datetime) -> bool:
        """Tell whether a trail that was stopped would have delivered this event."""
        account = str(event.get("recipientAccountId") or "")
        return any(account == who and start < moment < end for who, start, end in self.silenced)


@dataclass(frozen=True)
class Traffic:
    """How much normal activity, and when."""

    start: datetime
    hours: int = 24 * 7
    #: KMS instance API calls in a busy hour (quiet hours get a fraction of it).
    kms_per_hour: float = 600.0
    #: Share of calls that fail for ordinary reasons (throttling, no permission).
    error_rate: float = 0.01
    #: The organisation's time zone (working hours are 09:00-19:00 there).
    utc_offset_hours: int = 8


def activity_level(moment: datetime, utc_offset_hours: int = 8) -> float:
    """Relative activity at a moment: 1.0 in working hours, less at night and weekends.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> activity_level(datetime(2026, 3, 2, 3, tzinfo=timezone.utc))  # 11:00 Monday in UTC+8
    1.0
    >>> activity_level(datetime(2026, 3, 7, 18, tzinfo=timezone.utc)) < 0.2  # 02:00 Sunday
    True
    """
    local = moment + timedelta(hours=utc_offset_hours)
    hour = local.hour
    day = 1.0 if 9 <= hour < 19 else 0.45 if 7 <= hour < 9 or 19 <= hour < 23 else 0.15
    return day * (1.0 if local.weekday() < 5 else 0.35)


def normal_traffic(
    org: Organisation, traffic: Traffic, seed: int = 0, effects: Effects | None = None
) -> Iterator[Record]:
    """Yield ``(source, record)`` pairs of normal activity, in time order.

    ``effects`` are changes an attack makes to the world (a key disabled from some
    moment on); normal activity then fails the way it would.
    """
    world = World(org, traffic, random.Random(seed), effects)
    pending: list[tuple[datetime, int, str, dict[str, Any]]] = []
    serial = 0  # keeps the order stable among events of the same second
    for hour in range(traffic.hours):
        begin = traffic.start + timedelta(hours=hour)
        for moment, source, record in world.hour(begin):
            pending.append((moment, serial, source, record))
            serial += 1
        pending.sort(key=lambda item: (item[0], item[1]))
        cut = begin + timedelta(hours=1)  # a session begun late in the hour runs on
        ready = [p for p in pending if p[0] < cut]
        pending = [p for p in pending if p[0] >= cut]
        for _, _, source, record in ready:
            yield source, record
    for _, _, source, record in pending:
        yield source, record


def iso(moment: datetime) -> str:
    """Format a UTC time as the logs do: ``2026-03-02T01:52:55Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    """The state normal activity carries from hour to hour (sessions, keys)."""

    def __init__(
        self,
        org: Organisation,
        traffic: Traffic,
        rng: random.Random,
        effects: Effects | None = None,
        background_errors: bool = True,
    ) -> None:
        self.org = org
        self.traffic = traffic
        self.rng = rng
        self.effects = effects or Effects()
        self.background_errors = background_errors
        self.sessions: dict[tuple[str, str], str] = {}
        self.deploys = 0
        #: user id -> (from when, AccessKey): a rotated key replaces the first one.
        self.key_overrides: dict[str, tuple[datetime, str]] = {}
        self._profile: Any = None

    def current_key(self, user: Any, moment: datetime) -> str:
        """Return the AccessKey ``user`` signs with at ``moment`` (a rotation replaces it)."""
        since, key = self.key_overrides.get(user.user_id, (None, None))
        if since is not None and key is not None and moment >= since:
            return key
        return str(user.access_keys[0])

    def present(self, user: Any, moment: datetime) -> bool:
        """Tell whether a person works here yet (the fintech profile's new hire joins late)."""
        if self.org.profile != "fintech":
            return True
        from .profiles import HIRE_DAY, NEW_HIRE

        return user.name != NEW_HIRE or (moment - self.traffic.start).days > HIRE_DAY

    # -- one hour ----------------------------------------------------------------------

    def hour(self, begin: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Return one hour of normal activity, starting at ``begin`` (not yet sorted)."""
        level = activity_level(begin, self.traffic.utc_offset_hours)
        out: list[tuple[datetime, str, dict[str, Any]]] = []
        for workload in self.org.workloads:
            out += self._role_session(workload, begin)
        for _ in range(self._count(self.traffic.kms_per_hour * level * 0.7)):
            out.append(self._aap_call(self._pick(self.org.aaps), self._moment(begin)))
        for _ in range(self._count(self.traffic.kms_per_hour * level * 0.2)):
            out += self._workload_secret_read(self._pick(self.org.workloads), begin)
        for _ in range(self._count(self.traffic.kms_per_hour * level * 0.05)):
            out.append(self._backup_call(self._moment(begin)))
        out += self._actiontrail_delivery(begin)
        local = begin + timedelta(hours=self.traffic.utc_offset_hours)
        if local.weekday() < 5 and 9 <= local.hour < 18:
            if self.rng.random() < 0.45:
                out += self._deploy(self._moment(begin))
            if local.hour == 9:
                for person in [u for u in self.org.users if u.console and self.present(u, begin)]:
                    out += self._console_session(person, self._moment(begin))
        if self.org.profile == "fintech":
            if self._profile is None:
                from .profiles import FintechActivity

                self._profile = FintechActivity(self)
            out += self._profile.hour(begin)
        out += [retry for item in list(out) if item[1] == "kms" for retry in self._retries(item)]
        return out

    # -- KMS instance API ------------------------------------------------------------------

    def _aap_call(self, aap: Aap, moment: datetime) -> tuple[datetime, str, dict[str, Any]]:
        rng = self.rng
        client = rng.choice(aap.client_keys)
        api = rng.choice(INSTANCE_APIS)
        if api == "GetSecretValue":
            resource = self._zipf(list(aap.secrets))
            key_id = next(s.key_id for s in self.org.secrets if s.name == resource)
        else:
            resource = key_id = self._zipf(list(aap.keys))
        workloads = [
            w
            for w in self.org.workloads
            if w.account == aap.account
            and w.ips[0].rsplit(".", 1)[0] == aap.networks[0].rsplit(".", 1)[0]
        ]
        ip = rng.choice(rng.choice(workloads).ips) if workloads else "10.0.0.10"
        record = self.kms_record(
            moment,
            api,
            resource,
            key_id,
            aap.instance_id,
            aap.account,
            ip,
            identity_type="aap",
            access_key_id=client.key_id,
            principal_id=aap.name,
            fingerprint=client.fingerprint,
        )
        return moment, "kms", record

    def _retries(
        self, call: tuple[datetime, str, dict[str, Any]]
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Retry a throttled call the way the SDKs do: the same call, a moment later."""
        moment, source, record = call
        out: list[tuple[datetime, str, dict[str, Any]]] = []
        attempt = 0
        while record["status_code"] == 429 and attempt < 3:
            attempt += 1
            moment = moment + timedelta(milliseconds=200 * 2**attempt)
            record = {
                **record,
                "time": iso(moment),
                "request_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                "status_code": 200 if attempt == 3 or self.rng.random() < 0.8 else 429,
            }
            if record["status_code"] == 200:
                record["error_message"] = ""
            out.append((moment, source, record))
        return out

    def _backup_call(self, moment: datetime) -> tuple[datetime, str, dict[str, Any]]:
        account = self.org.account("prod").uid
        user = next(u for u in self.org.users if u.name == "backup-agent" and u.account == account)
        key = self._zipf([k for k in self.org.keys if k.account == account]).key_id
        instance = next(i.instance_id for i in self.org.instances if i.account == account)
        record = self.kms_record(
            moment,
            "GenerateDataKey",
            key,
            key,
            instance,
            account,
            user.office_ip,
            identity_type="ram-user",
            access_key_id=self.current_key(user, moment),
            principal_id=user.user_id,
        )
        return moment, "kms", record

    def _workload_secret_read(
        self, workload: Workload, begin: datetime
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Read a secret through the shared gateway: in ActionTrail and in the KMS log."""
        moment = self._moment(begin)
        role = self.org.role(workload.role, workload.account)
        session = workload.name
        key = self.sessions.get((workload.name, workload.account)) or sts_key(self.rng)
        secret = self._zipf([s for s in self.org.secrets if s.account == workload.account])
        request = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        ip = self.rng.choice(workload.ips)
        kms = self.kms_record(
            moment,
            "Decrypt",
            secret.name,
            secret.key_id,
            secret.instance_id,
            workload.account,
            ip,
            identity_type="ram-role",
            access_key_id=key,
            principal_id=role.role_id,
            request_id=request,
            share_gateway="GetSecretValue",
        )
        identity = _role_identity(role, session, key, moment)
        event = self.event(
            moment,
            "GetSecretValue",
            "Kms",
            identity,
            ip,
            {
                "SecretName": secret.name,
                "stsTokenPrincipalName": f"{role.name}/{session}",
                "stsTokenPlayerUid": workload.account,
            },
            agent=self.rng.choice(SDK_AGENTS),
            request_id=request,
        )
        if self.effects.disabled(secret.key_id, moment):
            event["errorCode"] = "Rejected.Disabled"
            event["errorMessage"] = "The key is disabled."
        return [(moment, "kms", kms), (moment, "actiontrail", event)]

    # -- ActionTrail: sessions, deploys, people, the trail itself ---------------------------

    def _role_session(
        self, workload: Workload, begin: datetime
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Renew a workload role's credentials, hourly (an AssumeRole by the service)."""
        role = self.org.role(workload.role, workload.account)
        moment = begin + timedelta(seconds=self.rng.randrange(0, 120))
        key = sts_key(self.rng)
        self.sessions[(workload.name, workload.account)] = key
        service = "ecs.aliyuncs.com" if workload.kind == "ecs" else "cs.aliyuncs.com"
        identity = {"type": "system", "userName": service}
        event = self.assume(
            moment,
            identity,
            service,
            role,
            workload.name,
            key,
            account=workload.account,
            agent=service,
        )
        event["eventType"] = "AliyunServiceEvent"
        return [(moment, "actiontrail", event)]

    def _deploy(self, moment: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
        """CI assumes deploy-role in a member account and reads what the release needs."""
        self.deploys += 1
        ci = self.org.user("ci-deployer")
        target = self.org.account(self.rng.choice(("dev", "prod", "prod")))
        role = self.org.role("deploy-role", target.uid)
        session = f"ci-{self.deploys:05d}"
        key = sts_key(self.rng)
        caller = {
            "type": "ram-user",
            "accountId": ci.account,
            "principalId": ci.user_id,
            "userName": ci.name,
            "accessKeyId": self.current_key(ci, moment),
        }
        out = [
            (
                moment,
                "actiontrail",
                self.assume(
                    moment,
                    caller,
                    ci.office_ip,
                    role,
                    session,
                    key,
                    account=ci.account,
                    agent=SDK_AGENTS[1],
                ),
            )
        ]
        identity = _role_identity(role, session, key, moment)
        for step in range(self.rng.randrange(2, 6)):
            later = moment + timedelta(seconds=20 + 15 * step)
            if step % 2:
                secret = self._zipf([s for s in self.org.secrets if s.account == target.uid])
                params: dict[str, Any] = {"SecretName": secret.name}
                api = "GetSecretValue"
            else:
                key_id = self._zipf([k for k in self.org.keys if k.account == target.uid]).key_id
                params, api = {"KeyId": key_id}, "DescribeKey"
            params.update(
                stsTokenPlayerUid=int(ci.account), stsTokenPrincipalName=f"{role.name}/{session}"
            )
            out.append(
                (
                    later,
                    "actiontrail",
                    self.event(
                        later,
                        api,
                        "Kms",
                        identity,
                        ci.office_ip,
                        params,
                        account=target.uid,
                        agent=SDK_AGENTS[1],
                    ),
                )
            )
        return out

    def _console_session(
        self, person: Any, moment: datetime
    ) -> list[tuple[datetime, str, dict[str, Any]]]:
        """Sign in to the console, switch into a member account, browse a little."""
        identity = {
            "type": "ram-user",
            "accountId": person.account,
            "principalId": person.user_id,
            "userName": person.name,
        }
        signin = self.event(
            moment,
            "ConsoleSignin",
            "AasSub",
            identity,
            person.office_ip,
            {},
            agent=BROWSER,
            event_type="ConsoleSignin",
            source="signin.aliyun.com",
        )
        signin["additionalEventData"] = {
            "mfaChecked": "true" if person.mfa else "false",
            "callbackUrl": "https://homenew.console.aliyun.com/",
        }
        signin["eventId"] = signin["requestId"] = (
            f"1.{self.rng.randrange(100, 999)}_{int(moment.timestamp() * 1000)}_"
            f"{self.rng.randrange(16**4):04x}"
        )
        out = [(moment, "actiontrail", signin)]
        target = self.org.account(self.rng.choice(("dev", "prod")))
        role = self.org.role("ResourceDirectoryAccountAccessRole", target.uid)
        key = sts_key(self.rng)
        switch = moment + timedelta(seconds=40)
        out.append(
            (
                switch,
                "actiontrail",
                self.assume(
                    switch,
                    identity,
                    person.office_ip,
                    role,
                    person.name,
                    key,
                    account=person.account,
                    agent=CONSOLE_AGENTS[0],
                ),
            )
        )
        session_identity = _role_identity(role, person.name, key, switch)
        session_identity["sessionContext"]["attributes"]["mfaAuthenticated"] = (
            "true" if person.mfa else "false"
        )
        for step in range(self.rng.randrange(3, 9)):
            later = switch + timedelta(seconds=30 * (step + 1))
            api = self.rng.choice(
                (
                    "ListKeys",
                    "DescribeKey",
                    "ListSecrets",
                    "DescribeSecret",
                    "ListKmsInstances",
                    "GetKmsInstance",
                )
            )
            params = {}
            if api == "DescribeKey":
                params["KeyId"] = self._zipf(
                    [k for k in self.org.keys if k.account == target.uid]
                ).key_id
            if api == "DescribeSecret":
                params["SecretName"] = self._zipf(
                    [s for s in self.org.secrets if s.account == target.uid]
                ).name
            out.append(
                (
                    later,
                    "actiontrail",
                    self.event(
                        later,
                        api,
                        "Kms",
                        session_identity,
                        person.office_ip,
                        params,
                        account=target.uid,
                        agent=self.rng.choice(CONSOLE_AGENTS),
                        event_type="ConsoleOperation",
                    ),
                )
            )
        return out

    def _actiontrail_delivery(self, begin: datetime) -> list[tuple[datetime, str, dict[str, Any]]]:
        """ActionTrail assumes its service-linked role to deliver logs (from ``Internal``)."""
        out = []
        for account in [a for a in self.org.accounts if a.purpose != "shared-services"]:
            role = self.org.role("AliyunServiceRoleForActionTrail", account.uid)
            moment = begin + timedelta(seconds=self.rng.randrange(3000, 3500))
            identity = {"type": "system", "userName": "actiontrail.aliyuncs.com"}
            event = self.assume(
                moment,
                identity,
                "Internal",
                role,
                "actiontrail",
                sts_key(self.rng),
                account=account.uid,
                agent="actiontrail.aliyuncs.com",
            )
            event["eventType"] = "AliyunServiceEvent"
            out.append((moment, "actiontrail", event))
        return out

    # -- record builders ---------------------------------------------------------------------

    def assume(
        self,
        moment: datetime,
        caller: dict[str, Any],
        ip: str,
        role: Role,
        session: str,
        key: str,
        account: str,
        agent: str,
    ) -> dict[str, Any]:
        """Build an ``AssumeRole`` event that issues ``key`` for ``role``/``session``."""
        params = {"RoleArn": role.arn, "RoleSessionName": session, "DurationSeconds": 3600}
        event = self.event(
            moment,
            "AssumeRole",
            "Sts",
            caller,
            ip,
            params,
            account=account,
            agent=agent,
            source="sts.aliyuncs.com",
            api_version="2015-04-01",
        )
        expiry = iso(moment + timedelta(hours=1))
        # Both key spellings occur in the vendor's samples (doc 289050 vs 28825).
        if self.rng.random() < 0.5:
            event["responseElements"] = {
                "Credentials": {"AccessKeyId": key, "Expiration": expiry},
                "AssumedRoleUser": {
                    "AssumedRoleId": f"{role.role_id}:{session}",
                    "Arn": f"{role.arn}/{session}",
                },
            }
        else:
            event["responseElements"] = {
                "credentials": {"accessKeyId": key, "expiration": expiry},
                "assumedRoleUser": {
                    "assumedRoleId": f"{role.role_id}:{session}",
                    "arn": f"{role.arn}/{session}",
                },
            }
        event["referencedResources"] = {"ACS::RAM::AccessKey": [key]}
        return event

    def event(
        self,
        moment: datetime,
        api: str,
        service: str,
        identity: dict[str, Any],
        ip: str,
        params: dict[str, Any],
        *,
        account: str | None = None,
        agent: str = SDK_AGENTS[0],
        request_id: str | None = None,
        event_type: str = "ApiCall",
        source: str | None = None,
        api_version: str = "2016-01-20",
    ) -> dict[str, Any]:
        """Build an ActionTrail event (background errors only when enabled)."""
        rng = self.rng
        request = request_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        recipient = account or identity.get("accountId") or ""
        region = "cn-hangzhou"
        host = source or f"{service.lower()}.{region}.aliyuncs.com"
        event: dict[str, Any] = {
            "eventId": str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
            "eventVersion": 1 if rng.random() < 0.5 else "1",
            "eventName": api,
            "eventType": event_type,
            "eventCategory": "Management",
            "eventRW": "Read" if api.startswith(("List", "Describe", "Get")) else "Write",
            "eventSource": host,
            "eventTime": iso(moment),
            "acsRegion": region,
            "serviceName": service,
            "apiVersion": api_version,
            "requestId": request,
            "requestParameters": {
                "AcsHost": host,
                "RegionId": region,
                "RequestId": request,
                **params,
            },
            "sourceIpAddress": ip,
            "userAgent": agent,
            "userIdentity": identity,
            "additionalEventData": {"Scheme": "https"},
            "errorCode": "",
            "errorMessage": "",
            "recipientAccountId": recipient,
            "isGlobal": service in ("Sts", "Ram", "Ims"),
        }
        if (
            self.background_errors
            and api not in ("AssumeRole", "ConsoleSignin")
            and rng.random() < self.traffic.error_rate
        ):
            code = rng.choice(("Throttling.User", "Forbidden.NoPermission"))
            event["errorCode"] = code
            event["errorMessage"] = (
                "Request was denied due to user flow control."
                if code.startswith("Throttling")
                else "This operation is forbidden by permission system."
            )
        return event

    def kms_record(
        self,
        moment: datetime,
        api: str,
        resource: str,
        key_id: str,
        instance: str,
        account: str,
        ip: str,
        *,
        identity_type: str,
        access_key_id: str,
        principal_id: str,
        fingerprint: str = "",
        request_id: str | None = None,
        share_gateway: str = "",
    ) -> dict[str, Any]:
        """Build a KMS access-log record (failing if the key is disabled then)."""
        rng = self.rng
        key = next((k for k in self.org.keys if k.key_id == key_id), None)
        version = key.versions[-1] if key else ""
        record: dict[str, Any] = {
            "access_key_fingerprint": fingerprint,
            "access_key_id": access_key_id,
            "account_id": account,
            "api_name": api,
            "api_version": "dkms-gcs-0.2",
            "client_ip": ip,
            "duration": round(rng.lognormvariate(0.2, 0.5), 3),
            "error_message": "",
            "identity_type": identity_type,
            "instance_id": instance,
            "level": "INFO",
            "principal_id": principal_id,
            "region_id": "cn-hangzhou",
            "request_id": request_id or str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "resource_id": resource,
            "resource_parameters": json.dumps(
                {"key_id": key_id, "key_version_id": version, "index": ""},
                separators=(",", ":"),
            ),
            "share_gateway_api_name": share_gateway,
            "status_code": 200,
            "time": iso(moment),
            "user_id": account,
            "useragent": rng.choice(SDK_AGENTS),
            "version": "V1.0",
        }
        if share_gateway:
            record.update(
                gateway_type="shared",
                cmkid=key_id,
                key_state="Enabled",
                key_version_id=version,
                domain_type="Vpc",
                error_code="",
            )
        if self.effects.disabled(key_id, moment):
            record.update(status_code=400, error_message="Rejected.Disabled: The key is disabled.")
            if share_gateway:
                record.update(error_code="Rejected.Disabled", key_state="Disabled")
        elif self.background_errors and rng.random() < self.traffic.error_rate:
            record.update(
                status_code=429,
                error_message="Rejected.Throttling: request rate exceeds the instance's quota",
            )
        return record

    # -- randomness ----------------------------------------------------------------------------

    def _count(self, mean: float) -> int:
        """Draw an hour's number of calls around ``mean`` (Poisson-like, never negative)."""
        if mean <= 0:
            return 0
        return max(0, round(self.rng.gauss(mean, math.sqrt(mean))))

    def _moment(self, begin: datetime) -> datetime:
        return begin + timedelta(seconds=self.rng.randrange(3600))

    def _pick(self, items: list[Any]) -> Any:
        return self.rng.choice(items)

    def _zipf(self, items: list[Any]) -> Any:
        """Pick a popular item more often than a rare one (Zipf-like, exponent about 1.2)."""
        rank = min(int(self.rng.paretovariate(1.2)) - 1, len(items) - 1)
        return items[rank]


def _role_identity(role: Role, session: str, key: str, moment: datetime) -> dict[str, Any]:
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
