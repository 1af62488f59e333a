"""A synthetic organisation on Alibaba Cloud: accounts, identities, keys, secrets.

One seed gives one organisation, always the same: a Resource Directory with a
shared-services account (people and CI), dev and prod members (workloads, KMS
instances), RAM users with permanent AccessKeys, roles trusted across accounts,
service-linked roles, ECS/ACK workloads using roles, KMS instances with keys, key
versions and secrets, and application access points (AAPs) with client keys and
network rules. Identifier formats follow log-formats.md §3.5 and §4.

Examples
--------
>>> org = build_organisation(seed=7)
>>> sorted(a.purpose for a in org.accounts)
['dev', 'prod', 'shared-services']
>>> org.user("ci-deployer").access_keys[0].startswith("LTAI")
True
>>> build_organisation(seed=7) == org
True
"""

from __future__ import annotations

import hashlib
import random
import string
import uuid
from dataclasses import dataclass, field

REGION = "cn-hangzhou"
REGION_CODE = "hzz"
_ALNUM = string.ascii_letters + string.digits
_LOWER = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class Account:
    """A member account of the Resource Directory."""

    uid: str
    name: str
    purpose: str


@dataclass(frozen=True)
class RamUser:
    """A RAM user: a person (console, with or without MFA) or a machine (AccessKeys)."""

    account: str
    user_id: str
    name: str
    access_keys: tuple[str, ...]
    console: bool
    mfa: bool
    office_ip: str


@dataclass(frozen=True)
class Role:
    """A RAM role; ``trusted`` lists the accounts (or services) that may assume it."""

    account: str
    role_id: str
    name: str
    trusted: tuple[str, ...]
    service_linked: bool = False

    @property
    def arn(self) -> str:
        """The role's ARN as it appears in ``RoleArn`` (name lower-cased, as ARNs show it)."""
        return f"acs:ram::{self.account}:role/{self.name.lower()}"


@dataclass(frozen=True)
class Workload:
    """An ECS instance or ACK pod that works with a RAM role's STS credentials."""

    account: str
    name: str
    kind: str
    role: str
    ips: tuple[str, ...]


@dataclass(frozen=True)
class Key:
    """A KMS instance key and its versions."""

    account: str
    instance_id: str
    key_id: str
    versions: tuple[str, ...]
    spec: str


@dataclass(frozen=True)
class Secret:
    """A secret held by a KMS instance, encrypted by one of its keys."""

    account: str
    instance_id: str
    name: str
    key_id: str


@dataclass(frozen=True)
class ClientKey:
    """An AAP client key: ``KAAP.<uuid>`` and the SHA-256 fingerprint of its public key."""

    key_id: str
    fingerprint: str


@dataclass(frozen=True)
class Aap:
    """An application access point: client keys, allowed networks, granted resources."""

    account: str
    instance_id: str
    name: str
    client_keys: tuple[ClientKey, ...]
    networks: tuple[str, ...]
    keys: tuple[str, ...]
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class KmsInstance:
    """A KMS instance (``kst-...``) in an account."""

    account: str
    instance_id: str
    region: str = REGION


@dataclass
class Organisation:
    """Everything that exists before any log line is written."""

    rd_id: str
    accounts: list[Account] = field(default_factory=list)
    users: list[RamUser] = field(default_factory=list)
    roles: list[Role] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    instances: list[KmsInstance] = field(default_factory=list)
    keys: list[Key] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    aaps: list[Aap] = field(default_factory=list)
    #: Which organisation this is (:data:`PROFILES`): ``acme`` or ``fintech``.
    profile: str = "acme"
    #: Workloads outside the everyday loops (the fintech profile's CI runner).
    runners: list[Workload] = field(default_factory=list)

    def account(self, purpose: str) -> Account:
        """Return the account with this purpose (``dev``, ``prod``, ``shared-services``)."""
        return next(a for a in self.accounts if a.purpose == purpose)

    def user(self, name: str) -> RamUser:
        """Return the RAM user with this name."""
        return next(u for u in self.users if u.name == name)

    def role(self, name: str, account: str | None = None) -> Role:
        """Return the role with this name (in ``account``, when given)."""
        return next(
            r for r in self.roles if r.name == name and (account is None or r.account == account)
        )


#: Organisation profiles: ``acme`` (three accounts, five people, a CI user) and
#: ``fintech`` (acme plus a data account, SREs with jump roles, a nightly CI runner that
#: chains roles across accounts, Terraform, an office NAT, a new hire; see
#: :mod:`kmsforensics.synth.profiles`).
PROFILES = ("acme", "fintech")


def build_organisation(seed: int = 0, profile: str = "acme") -> Organisation:
    """Build the organisation for ``seed`` (the same seed, the same organisation).

    ``profile`` is one of :data:`PROFILES`; ``fintech`` is ``acme`` with more.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    ids = _Ids(random.Random(seed))
    org = Organisation(rd_id="rd-" + ids.lower(6))
    shared = Account(ids.uid(), "shared-services", "shared-services")
    dev = Account(ids.uid(), "acme-dev", "dev")
    prod = Account(ids.uid(), "acme-prod", "prod")
    org.accounts = [shared, dev, prod]

    people = [("alice", True), ("bob", True), ("carol", False), ("dave", True), ("erin", False)]
    for index, (name, mfa) in enumerate(people):
        org.users.append(
            RamUser(
                shared.uid,
                ids.principal(),
                name,
                (ids.access_key(),),
                True,
                mfa,
                f"203.0.113.{20 + index}",
            )
        )
    org.users.append(
        RamUser(
            shared.uid,
            ids.principal(),
            "ci-deployer",
            (ids.access_key(),),
            False,
            False,
            "198.51.100.10",
        )
    )
    for account in (dev, prod):
        org.users.append(
            RamUser(
                account.uid,
                ids.principal(),
                "backup-agent",
                (ids.access_key(),),
                False,
                False,
                "10.0.9.5",
            )
        )

    for account in (dev, prod):
        org.roles += [
            Role(account.uid, ids.principal(), "deploy-role", (shared.uid,)),
            Role(account.uid, ids.principal(), "ResourceDirectoryAccountAccessRole", (shared.uid,)),
            Role(account.uid, ids.principal(), "payments-ecs-role", ("ecs.aliyuncs.com",)),
            Role(account.uid, ids.principal(), "orders-ack-role", ("cs.aliyuncs.com",)),
            Role(
                account.uid,
                ids.principal(),
                "AliyunServiceRoleForActionTrail",
                ("actiontrail.aliyuncs.com",),
                service_linked=True,
            ),
            Role(
                account.uid,
                ids.principal(),
                "AliyunServiceRoleForSLSSecurityLens",
                ("sls.aliyuncs.com",),
                service_linked=True,
            ),
        ]
        subnet = 16 if account is prod else 17
        for n in range(3):
            org.workloads.append(
                Workload(
                    account.uid,
                    f"i-{ids.lower(20)}",
                    "ecs",
                    "payments-ecs-role",
                    (f"10.{subnet}.1.{10 + n}",),
                )
            )
        org.workloads.append(
            Workload(
                account.uid,
                f"orders-{ids.lower(5)}",
                "ack",
                "orders-ack-role",
                tuple(f"10.{subnet}.8.{n}" for n in range(2, 6)),
            )
        )
        instance = KmsInstance(account.uid, f"kst-{REGION_CODE}{ids.lower(17)}")
        org.instances.append(instance)
        keys = [
            Key(
                account.uid,
                instance.instance_id,
                key_id,
                tuple(f"{key_id}-{ids.lower(6)}" for _ in range(1 + i % 3)),
                "Aliyun_AES_256" if i % 4 else "RSA_2048",
            )
            for i, key_id in enumerate(f"key-{REGION_CODE}{ids.lower(17)}" for _ in range(8))
        ]
        org.keys += keys
        apps = ("payments", "orders", "billing", "identity", "reporting")
        names = [
            f"{account.name.split('-')[1]}/{app}/{thing}"
            for app in apps
            for thing in ("db-password", "api-token", "signing-key")
        ]
        secrets = [
            Secret(account.uid, instance.instance_id, name, keys[i % 4].key_id)
            for i, name in enumerate(names)
        ]
        org.secrets += secrets
        for app, cidr in (("payments", f"10.{subnet}.1.0/24"), ("orders", f"10.{subnet}.8.0/24")):
            org.aaps.append(
                Aap(
                    account.uid,
                    instance.instance_id,
                    f"aap-{app}",
                    tuple(ids.client_key() for _ in range(2)),
                    (cidr,),
                    tuple(k.key_id for k in keys[:4]),
                    tuple(s.name for s in secrets if f"/{app}/" in s.name),
                )
            )
    if profile == "fintech":
        from .profiles import extend_fintech

        extend_fintech(org, ids)
    return org


class _Ids:
    """Identifiers in the vendor's formats, drawn from one random stream."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def lower(self, n: int) -> str:
        return "".join(self.rng.choices(_LOWER, k=n))

    def uid(self) -> str:
        return str(self.rng.randrange(10**15, 10**16))

    def principal(self) -> str:
        return str(self.rng.randrange(10**17, 10**18))

    def access_key(self) -> str:
        return "LTAI" + "".join(self.rng.choices(_ALNUM, k=20))

    def client_key(self) -> ClientKey:
        key_id = f"KAAP.{uuid.UUID(int=self.rng.getrandbits(128), version=4)}"
        digest = hashlib.sha256(key_id.encode()).hexdigest()
        return ClientKey(key_id, f"sha256-{digest}")


def sts_key(rng: random.Random) -> str:
    """Make a temporary AccessKey as STS issues it (``STS.`` + 28 characters)."""
    return "STS." + "".join(rng.choices(_ALNUM, k=28))
