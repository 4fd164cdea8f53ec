"""The print-platform's CrossGuard policies: GCP security and safety invariants, on any stack.

A second line of defence next to the program's own validation (``infra/settings.py``):
these rules hold for every stack, whatever the program or a hand edit produces, and run
in ``pulumi preview``/``pulumi up --policy-pack policy`` (docs/policy.md).

Property names: the engine hands an analyzer each resource's *inputs* as the provider
schema names them, i.e. camelCase (``uniformBucketLevelAccess``,
``settings.ipConfiguration.ipv4Enabled``), not the Python SDK's snake_case arguments —
``pulumi_policy`` deserialises the gRPC ``AnalyzeRequest.properties`` struct as is into
``args.props`` (pulumi_policy/policy.py, ``deserialize_properties(
json_format.MessageToDict(request.properties))``). An input the program does not set is
absent (the provider default then applies, which every rule below spells out).

Unknown values: during a preview, an input computed from another resource that does not
exist yet (an e-mail, a topic id) is unknown; reading it raises ``UnknownValueError``,
which pulumi_policy reports as "can't run policy ... during preview" instead of a
violation. The same rule runs again on ``pulumi up``, when the value is known.

Enforcement: every policy is ``mandatory`` (a violation fails the preview/update) except
where noted. The stack-dependent rules (deletion protection, ``protect``) take their
stacks from the policy config (``protectedStacks``, default ``["prod"]``) and the stack
name in the resource URN (``urn:pulumi:<stack>::<project>::...``), so one pack with no
per-stack config file serves dev and prod.
"""
from __future__ import annotations

import ipaddress
import json
import re
from typing import Any, Callable, Iterable, Mapping, Optional

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

MANDATORY = EnforcementLevel.MANDATORY
ADVISORY = EnforcementLevel.ADVISORY

BUCKET = "gcp:storage/bucket:Bucket"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
GKE_CLUSTER = "gcp:container/cluster:Cluster"
SSL_POLICY = "gcp:compute/sSLPolicy:SSLPolicy"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
FIREWALL = "gcp:compute/firewall:Firewall"
SERVICE_ACCOUNT_KEY = "gcp:serviceaccount/key:Key"
HMAC_KEY = "gcp:storage/hmacKey:HmacKey"

#: Stacks whose stateful resources must be deletion-protected when the policy config
#: does not say otherwise (``protectedStacks`` / ``requireDeletionProtection``).
DEFAULT_PROTECTED_STACKS = ("prod",)

#: Basic roles: every permission on (almost) every service of the project.
FORBIDDEN_ROLES = frozenset({"roles/owner", "roles/editor"})
#: Principals that mean "anyone on the internet" / "any Google account".
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
#: Cloud SQL SSL modes that refuse unencrypted connections.
ENCRYPTED_SSL_MODES = frozenset({"ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"})
#: SSL policy minimum TLS versions accepted.
ACCEPTED_MIN_TLS = frozenset({"TLS_1_2", "TLS_1_3"})
#: Default of ``deadLetterTopicPattern``: a subscription on a topic matching it is the
#: inspection subscription of a dead-letter topic and needs no dead-letter policy itself.
DEFAULT_DEAD_LETTER_TOPIC_PATTERN = r"dead-letter$"

# IAM resource types: ``<module>/<x>IAMMember|IAMBinding|IAMPolicy:<X>`` — pulumi-gcp spells
# them ``iAMMember`` (projects, storage, pubsub...) or ``IamMember`` (artifactregistry...).
_IAM_MEMBER_RE = re.compile(r"^gcp:[^/]+/[a-z]*i(am|AM)Member:", re.IGNORECASE)
_IAM_BINDING_RE = re.compile(r"^gcp:[^/]+/[a-z]*i(am|AM)Binding:", re.IGNORECASE)
_IAM_POLICY_RE = re.compile(r"^gcp:[^/]+/[a-z]*i(am|AM)Policy:", re.IGNORECASE)

Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


# --------------------------------------------------------------------------- helpers

def _get(props: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """``props`` at the dotted ``path`` (``settings.ipConfiguration.sslMode``); ``default`` when absent.

    A nested block is a dict; pulumi-gcp's single-element blocks arrive as a dict too.
    """
    node: Any = props
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
        if node is None:
            return default
    return node


def _stack_of(urn: str) -> str:
    """The stack name of a resource URN (``urn:pulumi:<stack>::<project>::<type>::<name>``)."""
    prefix = "urn:pulumi:"
    if not urn.startswith(prefix):
        return ""
    return urn[len(prefix):].split("::", 1)[0]


def _deletion_protection_required(args: ResourceValidationArgs) -> bool:
    """Whether the resource's stack must have deletion protection (policy config, then the URN).

    Config (``pulumi preview --policy-pack-config``): ``requireDeletionProtection`` (bool)
    wins when set; otherwise the stack must be in ``protectedStacks`` (default ``["prod"]``).
    """
    config = args.get_config() or {}
    forced = config.get("requireDeletionProtection")
    if isinstance(forced, bool):
        return forced
    stacks = config.get("protectedStacks")
    if stacks is None:
        stacks = DEFAULT_PROTECTED_STACKS
    return _stack_of(args.urn) in set(stacks)


def _where(args: ResourceValidationArgs) -> str:
    """How a message names the resource: its logical name and type."""
    return f"{args.resource_type} '{args.name}'"


PROTECTION_CONFIG = PolicyConfigSchema(
    properties={
        "requireDeletionProtection": {
            "type": "boolean",
            "description": "Require deletion protection on every stack (true) or none (false); "
                           "unset: only on the stacks in protectedStacks.",
        },
        "protectedStacks": {
            "type": "array",
            "items": {"type": "string"},
            "default": list(DEFAULT_PROTECTED_STACKS),
            "description": "Stacks (the name in the resource URN) whose stateful resources must be "
                           "deletion-protected when requireDeletionProtection is unset.",
        },
    },
)


# --------------------------------------------------------------------------- GCS

def validate_bucket_access(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """GCS buckets: uniform bucket-level access on, public access prevention ``enforced``.

    Uniform bucket-level access disables object ACLs, so IAM alone decides access
    (https://cloud.google.com/storage/docs/uniform-bucket-level-access); public access
    prevention ``enforced`` refuses any grant to allUsers/allAuthenticatedUsers
    (https://cloud.google.com/storage/docs/public-access-prevention). Provider defaults:
    ``uniformBucketLevelAccess`` false, ``publicAccessPrevention`` ``inherited``
    (https://www.pulumi.com/registry/packages/gcp/api-docs/storage/bucket/).
    """
    if args.resource_type != BUCKET:
        return
    props = args.props
    if props.get("uniformBucketLevelAccess") is not True:
        report(f"{_where(args)}: uniformBucketLevelAccess must be true "
               f"(got {props.get('uniformBucketLevelAccess')!r}); object ACLs must be disabled.")
    if props.get("publicAccessPrevention") != "enforced":
        report(f"{_where(args)}: publicAccessPrevention must be \"enforced\" "
               f"(got {props.get('publicAccessPrevention')!r}).")


# --------------------------------------------------------------------------- IAM

def _iam_grants(args: ResourceValidationArgs) -> Iterable[tuple[str, list[str], str]]:
    """``(role, members, where)`` of an IAM member/binding/policy resource; nothing for others."""
    props = args.props
    rtype = args.resource_type
    if _IAM_MEMBER_RE.match(rtype):
        yield props.get("role") or "", [props.get("member") or ""], "role/member"
    elif _IAM_BINDING_RE.match(rtype):
        yield props.get("role") or "", list(props.get("members") or []), "role/members"
    elif _IAM_POLICY_RE.match(rtype):
        raw = props.get("policyData")
        if not raw:
            return
        try:
            policy = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return
        for i, binding in enumerate((policy or {}).get("bindings") or []):
            yield binding.get("role") or "", list(binding.get("members") or []), f"policyData.bindings[{i}]"


def validate_iam_no_basic_roles(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No IAM grant of the basic roles ``roles/owner`` or ``roles/editor``.

    Basic roles carry thousands of permissions across all services; Google recommends
    predefined or custom roles instead (https://cloud.google.com/iam/docs/roles-overview#basic,
    https://cloud.google.com/iam/docs/using-iam-securely#least_privilege). Checked on every
    ``*IAMMember``/``*IAMBinding`` (``role``) and ``*IAMPolicy`` (``policyData`` bindings) type.
    """
    for role, _members, where in _iam_grants(args):
        if role in FORBIDDEN_ROLES:
            report(f"{_where(args)}: {where} grants the basic role {role!r}; "
                   "use a predefined or custom role with only the permissions needed.")


def validate_iam_no_public_members(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No IAM grant to ``allUsers`` or ``allAuthenticatedUsers``.

    These principals are anyone on the internet and any Google account
    (https://cloud.google.com/iam/docs/principals-overview#all-users); the platform serves
    nothing publicly through IAM. Checked on ``member``, ``members`` and ``policyData``.
    """
    for role, members, where in _iam_grants(args):
        public = sorted(set(members) & PUBLIC_MEMBERS)
        if public:
            report(f"{_where(args)}: {where} grants {role!r} to {', '.join(public)}; "
                   "public principals are not allowed.")


def validate_no_long_lived_keys(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """No service account keys (``gcp:serviceaccount/key:Key``) nor HMAC keys, at all.

    Exported keys are long-lived credentials; workloads use Workload Identity and CI uses
    workload identity federation (https://cloud.google.com/iam/docs/best-practices-for-managing-service-account-keys,
    https://cloud.google.com/storage/docs/authentication/hmackeys). Also enforceable by the
    organisation policy ``iam.disableServiceAccountKeyCreation``.
    """
    if args.resource_type == SERVICE_ACCOUNT_KEY:
        report(f"{_where(args)}: service account keys are not allowed; "
               "use Workload Identity (GKE) or workload identity federation (CI).")
    elif args.resource_type == HMAC_KEY:
        report(f"{_where(args)}: HMAC keys are long-lived credentials and are not allowed; "
               "use IAM with Workload Identity.")


# --------------------------------------------------------------------------- Cloud SQL

def validate_sql_network(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Cloud SQL: no public IPv4 address, and SSL/TLS required for every connection.

    ``settings.ipConfiguration.ipv4Enabled`` defaults to true (a public IP); it must be
    ``false`` (private IP only, https://cloud.google.com/sql/docs/postgres/configure-private-ip).
    ``settings.ipConfiguration.sslMode`` must be ``ENCRYPTED_ONLY`` or
    ``TRUSTED_CLIENT_CERTIFICATE_REQUIRED`` (https://cloud.google.com/sql/docs/postgres/admin-api/rest/v1/instances#ipconfiguration,
    https://cloud.google.com/sql/docs/postgres/configure-ssl-instance#enforcing-ssl).
    """
    if args.resource_type != SQL_INSTANCE:
        return
    ip = _get(args.props, "settings.ipConfiguration", {})
    if ip.get("ipv4Enabled") is not False:
        report(f"{_where(args)}: settings.ipConfiguration.ipv4Enabled must be false "
               f"(got {ip.get('ipv4Enabled')!r}; the provider default true assigns a public IP).")
    if ip.get("sslMode") not in ENCRYPTED_SSL_MODES:
        report(f"{_where(args)}: settings.ipConfiguration.sslMode must be one of "
               f"{', '.join(sorted(ENCRYPTED_SSL_MODES))} (got {ip.get('sslMode')!r}).")


def validate_sql_backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Cloud SQL: automated backups and point-in-time recovery enabled.

    ``settings.backupConfiguration.enabled`` and, for PostgreSQL and SQL Server,
    ``pointInTimeRecoveryEnabled`` (MySQL: ``binaryLogEnabled``) must be true
    (https://cloud.google.com/sql/docs/postgres/backup-recovery/backups,
    https://cloud.google.com/sql/docs/postgres/backup-recovery/pitr).
    """
    if args.resource_type != SQL_INSTANCE:
        return
    backup = _get(args.props, "settings.backupConfiguration", {})
    if backup.get("enabled") is not True:
        report(f"{_where(args)}: settings.backupConfiguration.enabled must be true "
               f"(got {backup.get('enabled')!r}).")
    version = str(args.props.get("databaseVersion") or "")
    pitr_key = "binaryLogEnabled" if version.startswith("MYSQL") else "pointInTimeRecoveryEnabled"
    if backup.get(pitr_key) is not True:
        report(f"{_where(args)}: settings.backupConfiguration.{pitr_key} must be true "
               f"(got {backup.get(pitr_key)!r}); point-in-time recovery is required.")


def validate_sql_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Cloud SQL, on protected stacks: deletion protection both in Pulumi and in the API.

    ``deletionProtection`` (provider-side, default true) stops Pulumi from deleting the
    instance; ``settings.deletionProtectionEnabled`` (API-side, default false) stops anyone
    else (console, gcloud) (https://cloud.google.com/sql/docs/postgres/deletion-protection,
    https://www.pulumi.com/registry/packages/gcp/api-docs/sql/databaseinstance/).
    """
    if args.resource_type != SQL_INSTANCE or not _deletion_protection_required(args):
        return
    stack = _stack_of(args.urn)
    if args.props.get("deletionProtection") is False:
        report(f"{_where(args)}: deletionProtection must not be false on stack {stack!r}.")
    if _get(args.props, "settings.deletionProtectionEnabled") is not True:
        report(f"{_where(args)}: settings.deletionProtectionEnabled must be true on stack {stack!r} "
               f"(got {_get(args.props, 'settings.deletionProtectionEnabled')!r}).")


# --------------------------------------------------------------------------- GKE

def validate_gke_security(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """GKE clusters: private nodes, a closed control plane, a release channel, Workload Identity.

    - ``privateClusterConfig.enablePrivateNodes`` true: nodes get no external IP
      (https://cloud.google.com/kubernetes-engine/docs/how-to/private-clusters);
    - ``masterAuthorizedNetworksConfig`` present unless the endpoint is private
      (``privateClusterConfig.enablePrivateEndpoint``), and none of its ``cidrBlocks`` is a
      ``/0`` (0.0.0.0/0, ::/0) (https://cloud.google.com/kubernetes-engine/docs/how-to/authorized-networks);
    - ``releaseChannel.channel`` set (not ``UNSPECIFIED``): automatic, supported upgrades
      (https://cloud.google.com/kubernetes-engine/docs/concepts/release-channels);
    - Workload Identity: ``workloadIdentityConfig.workloadPool`` set, or an Autopilot cluster
      (``enableAutopilot``: always on, https://cloud.google.com/kubernetes-engine/docs/concepts/workload-identity).
    """
    if args.resource_type != GKE_CLUSTER:
        return
    props = args.props
    private = _get(props, "privateClusterConfig", {})
    if private.get("enablePrivateNodes") is not True:
        report(f"{_where(args)}: privateClusterConfig.enablePrivateNodes must be true "
               f"(got {private.get('enablePrivateNodes')!r}).")
    authorized = props.get("masterAuthorizedNetworksConfig")
    if authorized is None and private.get("enablePrivateEndpoint") is not True:
        report(f"{_where(args)}: masterAuthorizedNetworksConfig must be set when the control plane "
               "has a public endpoint (privateClusterConfig.enablePrivateEndpoint is not true).")
    for i, block in enumerate(_get(props, "masterAuthorizedNetworksConfig.cidrBlocks", []) or []):
        cidr = (block or {}).get("cidrBlock") or ""
        if _is_everywhere(cidr):
            report(f"{_where(args)}: masterAuthorizedNetworksConfig.cidrBlocks[{i}].cidrBlock is "
                   f"{cidr!r}: the control plane must not be reachable from the whole internet.")
    channel = _get(props, "releaseChannel.channel")
    if not channel or channel == "UNSPECIFIED":
        report(f"{_where(args)}: releaseChannel.channel must be RAPID, REGULAR, STABLE or EXTENDED "
               f"(got {channel!r}).")
    if props.get("enableAutopilot") is not True and not _get(props, "workloadIdentityConfig.workloadPool"):
        report(f"{_where(args)}: workloadIdentityConfig.workloadPool must be set "
               "(Workload Identity; <project>.svc.id.goog).")


def validate_gke_deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """GKE clusters, on protected stacks: ``deletionProtection`` not false.

    The provider-side flag (default true) refuses ``pulumi destroy``/a replacement of the
    cluster (https://www.pulumi.com/registry/packages/gcp/api-docs/container/cluster/).
    """
    if args.resource_type != GKE_CLUSTER or not _deletion_protection_required(args):
        return
    if args.props.get("deletionProtection") is False:
        report(f"{_where(args)}: deletionProtection must not be false on stack {_stack_of(args.urn)!r}.")


def validate_stateful_protect(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """On protected stacks: the Cloud SQL instance, buckets and the GKE cluster carry ``protect``,
    and buckets are not ``forceDestroy``.

    The ``protect`` resource option makes the Pulumi engine refuse to delete the resource
    (https://www.pulumi.com/docs/iac/concepts/options/protect/); ``forceDestroy`` true would
    delete every object with the bucket
    (https://www.pulumi.com/registry/packages/gcp/api-docs/storage/bucket/).
    """
    if args.resource_type not in (SQL_INSTANCE, BUCKET, GKE_CLUSTER) or not _deletion_protection_required(args):
        return
    stack = _stack_of(args.urn)
    if not getattr(args.opts, "protect", False):
        report(f"{_where(args)}: the protect resource option must be set on stack {stack!r}.")
    if args.resource_type == BUCKET and args.props.get("forceDestroy") is True:
        report(f"{_where(args)}: forceDestroy must not be true on stack {stack!r}.")


# --------------------------------------------------------------------------- TLS, Pub/Sub, firewall

def validate_ssl_policy_min_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """SSL policies: ``minTlsVersion`` TLS_1_2 or TLS_1_3 (the default is TLS_1_0).

    https://cloud.google.com/load-balancing/docs/ssl-policies-concepts,
    https://www.pulumi.com/registry/packages/gcp/api-docs/compute/sslpolicy/.
    """
    if args.resource_type != SSL_POLICY:
        return
    version = args.props.get("minTlsVersion")
    if version not in ACCEPTED_MIN_TLS:
        report(f"{_where(args)}: minTlsVersion must be TLS_1_2 or TLS_1_3 "
               f"(got {version!r}; the default is TLS_1_0).")


def validate_ssl_policy_profile(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """SSL policies: ``profile`` MODERN or RESTRICTED (advisory).

    The default ``COMPATIBLE`` profile still offers legacy cipher suites (CBC, 3DES at
    TLS 1.0); MODERN/RESTRICTED do not
    (https://cloud.google.com/load-balancing/docs/ssl-policies-concepts#defining_an_ssl_policy).
    Advisory: a ``CUSTOM`` profile with a vetted cipher list can be a legitimate choice.
    """
    if args.resource_type != SSL_POLICY:
        return
    profile = args.props.get("profile") or "COMPATIBLE"
    if profile not in ("MODERN", "RESTRICTED"):
        report(f"{_where(args)}: profile is {profile!r}; prefer MODERN or RESTRICTED "
               "(COMPATIBLE offers legacy ciphers).")


def validate_subscription_dead_letter(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Pub/Sub subscriptions: a dead-letter policy, except on a dead-letter topic itself.

    Without ``deadLetterPolicy.deadLetterTopic`` a poison message is redelivered forever
    (https://cloud.google.com/pubsub/docs/handling-failures#dead_letter_topic). A
    subscription whose ``topic`` matches the config ``deadLetterTopicPattern`` (default
    ``dead-letter$``) is the inspection subscription of a dead-letter topic and is exempt.
    """
    if args.resource_type != SUBSCRIPTION:
        return
    config = args.get_config() or {}
    pattern = config.get("deadLetterTopicPattern") or DEFAULT_DEAD_LETTER_TOPIC_PATTERN
    topic = str(args.props.get("topic") or "")
    if topic and re.search(pattern, topic):
        return
    if not _get(args.props, "deadLetterPolicy.deadLetterTopic"):
        report(f"{_where(args)}: deadLetterPolicy.deadLetterTopic must be set "
               f"(topic {topic!r} does not match deadLetterTopicPattern {pattern!r}).")


def _is_everywhere(cidr: str) -> bool:
    """True for a CIDR covering the whole IPv4 or IPv6 space (``0.0.0.0/0``, ``::/0``)."""
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False


def validate_firewall_ingress(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """VPC firewall: no INGRESS *allow* rule from 0.0.0.0/0 or ::/0.

    The load balancer and its health checks come from Google's ranges
    (https://cloud.google.com/load-balancing/docs/health-check-concepts#ip-ranges); nothing
    needs to reach the nodes from anywhere (https://cloud.google.com/firewall/docs/firewalls).
    Deny rules from everywhere are fine. ``direction`` defaults to INGRESS; an INGRESS rule
    with no ``sourceRanges``, ``sourceTags`` or ``sourceServiceAccounts`` applies to 0.0.0.0/0
    (https://cloud.google.com/firewall/docs/firewalls#sources_for_rules), so it counts as "from anywhere".
    """
    if args.resource_type != FIREWALL:
        return
    props = args.props
    if (props.get("direction") or "INGRESS") != "INGRESS" or not props.get("allows"):
        return
    if props.get("disabled") is True:
        return
    ranges = props.get("sourceRanges") or []
    if not ranges and not props.get("sourceTags") and not props.get("sourceServiceAccounts"):
        report(f"{_where(args)}: INGRESS allow rule without sourceRanges, sourceTags or "
               "sourceServiceAccounts: GCP then applies it to 0.0.0.0/0.")
        return
    wide = [c for c in ranges if _is_everywhere(str(c))]
    if wide:
        report(f"{_where(args)}: sourceRanges {wide} on an INGRESS allow rule opens it to the whole internet.")


def _policy(name: str, description: str, validate: Validate,
            level: EnforcementLevel = MANDATORY,
            config_schema: Optional[PolicyConfigSchema] = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=level, config_schema=config_schema)


POLICIES: list[ResourceValidationPolicy] = [
    _policy("gcs-bucket-uniform-access-public-prevention",
            "GCS buckets have uniform bucket-level access and public access prevention enforced.",
            validate_bucket_access),
    _policy("iam-no-basic-roles",
            "No IAM member/binding/policy grants roles/owner or roles/editor.",
            validate_iam_no_basic_roles),
    _policy("iam-no-public-members",
            "No IAM member/binding/policy grants a role to allUsers or allAuthenticatedUsers.",
            validate_iam_no_public_members),
    _policy("no-service-account-keys",
            "No service account keys or HMAC keys (long-lived credentials).",
            validate_no_long_lived_keys),
    _policy("cloudsql-private-ip-ssl",
            "Cloud SQL instances have no public IPv4 and require SSL (ENCRYPTED_ONLY or TRUSTED_CLIENT_CERTIFICATE_REQUIRED).",
            validate_sql_network),
    _policy("cloudsql-backups-pitr",
            "Cloud SQL instances have automated backups and point-in-time recovery.",
            validate_sql_backups),
    _policy("cloudsql-deletion-protection",
            "On protected stacks, Cloud SQL instances have deletion protection in Pulumi and in the API.",
            validate_sql_deletion_protection, config_schema=PROTECTION_CONFIG),
    _policy("gke-cluster-security",
            "GKE clusters: private nodes, master authorized networks never 0.0.0.0/0, a release channel, Workload Identity.",
            validate_gke_security),
    _policy("gke-deletion-protection",
            "On protected stacks, GKE clusters keep deletionProtection.",
            validate_gke_deletion_protection, config_schema=PROTECTION_CONFIG),
    _policy("stateful-resources-protected",
            "On protected stacks, the Cloud SQL instance, buckets and GKE cluster carry the protect option; buckets are not forceDestroy.",
            validate_stateful_protect, config_schema=PROTECTION_CONFIG),
    _policy("ssl-policy-min-tls-1-2",
            "SSL policies require TLS 1.2 or later.",
            validate_ssl_policy_min_tls),
    _policy("ssl-policy-modern-profile",
            "SSL policies use the MODERN or RESTRICTED profile (advisory).",
            validate_ssl_policy_profile, level=ADVISORY),
    _policy("pubsub-subscription-dead-letter",
            "Pub/Sub subscriptions have a dead-letter policy (subscriptions of dead-letter topics excepted).",
            validate_subscription_dead_letter,
            config_schema=PolicyConfigSchema(properties={
                "deadLetterTopicPattern": {
                    "type": "string",
                    "default": DEFAULT_DEAD_LETTER_TOPIC_PATTERN,
                    "description": "Regular expression (re.search) on a subscription's topic marking a "
                                   "dead-letter topic, whose subscriptions are exempt.",
                },
            })),
    _policy("firewall-no-ingress-from-anywhere",
            "No VPC firewall INGRESS allow rule from 0.0.0.0/0 or ::/0.",
            validate_firewall_ingress),
]
