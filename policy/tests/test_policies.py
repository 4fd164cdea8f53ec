"""Every policy fires on a bad resource (naming the resource and the property) and stays silent on a good one.

Props are camelCase, as the engine passes them to an analyzer (gcp_platform_policies docstring).
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel

from conftest import make_args, pack, policy_named, run_policy

BUCKET_OK = {"name": "uploads", "location": "europe-west1", "uniformBucketLevelAccess": True,
             "publicAccessPrevention": "enforced", "forceDestroy": False}
SQL_OK = {
    "databaseVersion": "POSTGRES_16",
    "deletionProtection": True,
    "settings": {
        "tier": "db-custom-2-7680",
        "deletionProtectionEnabled": True,
        "backupConfiguration": {"enabled": True, "pointInTimeRecoveryEnabled": True},
        "ipConfiguration": {"ipv4Enabled": False, "privateNetwork": "projects/p/global/networks/n",
                            "sslMode": "ENCRYPTED_ONLY"},
    },
}
GKE_OK = {
    "enableAutopilot": False,
    "deletionProtection": True,
    "privateClusterConfig": {"enablePrivateNodes": True, "enablePrivateEndpoint": False},
    "masterAuthorizedNetworksConfig": {"cidrBlocks": [{"cidrBlock": "198.51.100.0/24", "displayName": "vpn"}]},
    "releaseChannel": {"channel": "STABLE"},
    "workloadIdentityConfig": {"workloadPool": "p.svc.id.goog"},
}
SSL_OK = {"minTlsVersion": "TLS_1_2", "profile": "MODERN"}
SUB_OK = {"topic": "projects/p/topics/uploads",
          "deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/uploads-dead-letter", "maxDeliveryAttempts": 5}}
FW_OK = {"direction": "INGRESS", "allows": [{"protocol": "tcp", "ports": ["8080"]}],
         "sourceRanges": ["35.191.0.0/16", "130.211.0.0/22"]}
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"


def with_(props: dict, path: str, value: Any) -> dict:
    """A deep copy of ``props`` with ``path`` (dotted) set to ``value`` (``...`` deletes it)."""
    out = copy.deepcopy(props)
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return out


# (policy, resource type, good props, bad props, words the message must contain)
CASES = [
    ("gcs-bucket-uniform-access-public-prevention", "gcp:storage/bucket:Bucket", BUCKET_OK,
     with_(BUCKET_OK, "uniformBucketLevelAccess", False), ["uniformBucketLevelAccess"]),
    ("gcs-bucket-uniform-access-public-prevention", "gcp:storage/bucket:Bucket", BUCKET_OK,
     with_(BUCKET_OK, "uniformBucketLevelAccess", ...), ["uniformBucketLevelAccess"]),
    ("gcs-bucket-uniform-access-public-prevention", "gcp:storage/bucket:Bucket", BUCKET_OK,
     with_(BUCKET_OK, "publicAccessPrevention", "inherited"), ["publicAccessPrevention", "inherited"]),
    ("gcs-bucket-uniform-access-public-prevention", "gcp:storage/bucket:Bucket", BUCKET_OK,
     with_(BUCKET_OK, "publicAccessPrevention", ...), ["publicAccessPrevention"]),
    ("iam-no-basic-roles", PROJECT_MEMBER, {"role": "roles/cloudsql.client", "member": "serviceAccount:a@p.iam.gserviceaccount.com"},
     {"role": "roles/owner", "member": "serviceAccount:a@p.iam.gserviceaccount.com"}, ["role/member", "roles/owner"]),
    ("iam-no-basic-roles", "gcp:projects/iAMBinding:IAMBinding", {"role": "roles/viewer", "members": ["group:ops@example.com"]},
     {"role": "roles/editor", "members": ["group:ops@example.com"]}, ["role/members", "roles/editor"]),
    ("iam-no-basic-roles", "gcp:storage/bucketIAMMember:BucketIAMMember", {"role": "roles/storage.objectViewer", "member": "user:a@example.com"},
     {"role": "roles/editor", "member": "user:a@example.com"}, ["roles/editor"]),
    ("iam-no-basic-roles", "gcp:projects/iAMPolicy:IAMPolicy",
     {"policyData": json.dumps({"bindings": [{"role": "roles/viewer", "members": ["user:a@example.com"]}]})},
     {"policyData": json.dumps({"bindings": [{"role": "roles/viewer", "members": ["user:a@example.com"]},
                                              {"role": "roles/owner", "members": ["user:a@example.com"]}]})},
     ["policyData.bindings[1]", "roles/owner"]),
    ("iam-no-public-members", "gcp:storage/bucketIAMMember:BucketIAMMember", {"role": "roles/storage.objectViewer", "member": "user:a@example.com"},
     {"role": "roles/storage.objectViewer", "member": "allUsers"}, ["member", "allUsers"]),
    ("iam-no-public-members", "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
     {"role": "roles/artifactregistry.reader", "member": "serviceAccount:n@p.iam.gserviceaccount.com"},
     {"role": "roles/artifactregistry.reader", "member": "allAuthenticatedUsers"}, ["allAuthenticatedUsers"]),
    ("iam-no-public-members", "gcp:pubsub/topicIAMBinding:TopicIAMBinding", {"role": "roles/pubsub.publisher", "members": ["user:a@example.com"]},
     {"role": "roles/pubsub.publisher", "members": ["user:a@example.com", "allUsers"]}, ["members", "allUsers"]),
    ("no-service-account-keys", "gcp:serviceaccount/key:Key", None,
     {"serviceAccountId": "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com"}, ["service account keys"]),
    ("no-service-account-keys", "gcp:storage/hmacKey:HmacKey", None,
     {"serviceAccountEmail": "a@p.iam.gserviceaccount.com"}, ["HMAC"]),
    ("cloudsql-private-ip-ssl", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "settings.ipConfiguration.ipv4Enabled", True), ["settings.ipConfiguration.ipv4Enabled"]),
    ("cloudsql-private-ip-ssl", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "settings.ipConfiguration.ipv4Enabled", ...), ["ipv4Enabled", "default true"]),
    ("cloudsql-private-ip-ssl", "gcp:sql/databaseInstance:DatabaseInstance",
     with_(SQL_OK, "settings.ipConfiguration.sslMode", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"),
     with_(SQL_OK, "settings.ipConfiguration.sslMode", "ALLOW_UNENCRYPTED_AND_ENCRYPTED"),
     ["settings.ipConfiguration.sslMode", "ALLOW_UNENCRYPTED_AND_ENCRYPTED"]),
    ("cloudsql-backups-pitr", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "settings.backupConfiguration.enabled", False), ["settings.backupConfiguration.enabled"]),
    ("cloudsql-backups-pitr", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "settings.backupConfiguration.pointInTimeRecoveryEnabled", ...),
     ["settings.backupConfiguration.pointInTimeRecoveryEnabled"]),
    ("cloudsql-backups-pitr", "gcp:sql/databaseInstance:DatabaseInstance",
     with_(with_(SQL_OK, "databaseVersion", "MYSQL_8_0"), "settings.backupConfiguration.binaryLogEnabled", True),
     with_(SQL_OK, "databaseVersion", "MYSQL_8_0"), ["settings.backupConfiguration.binaryLogEnabled"]),
    ("cloudsql-deletion-protection", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "deletionProtection", False), ["deletionProtection", "'prod'"]),
    ("cloudsql-deletion-protection", "gcp:sql/databaseInstance:DatabaseInstance", SQL_OK,
     with_(SQL_OK, "settings.deletionProtectionEnabled", ...), ["settings.deletionProtectionEnabled"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster", GKE_OK,
     with_(GKE_OK, "privateClusterConfig.enablePrivateNodes", False), ["privateClusterConfig.enablePrivateNodes"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster", GKE_OK,
     with_(GKE_OK, "masterAuthorizedNetworksConfig.cidrBlocks",
           [{"cidrBlock": "198.51.100.0/24"}, {"cidrBlock": "0.0.0.0/0"}]),
     ["masterAuthorizedNetworksConfig.cidrBlocks[1].cidrBlock", "0.0.0.0/0"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster", GKE_OK,
     with_(GKE_OK, "masterAuthorizedNetworksConfig.cidrBlocks", [{"cidrBlock": "::/0"}]), ["::/0"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster",
     with_(with_(GKE_OK, "masterAuthorizedNetworksConfig", ...), "privateClusterConfig.enablePrivateEndpoint", True),
     with_(GKE_OK, "masterAuthorizedNetworksConfig", ...), ["masterAuthorizedNetworksConfig must be set"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster", GKE_OK,
     with_(GKE_OK, "releaseChannel", ...), ["releaseChannel.channel"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster", GKE_OK,
     with_(GKE_OK, "releaseChannel.channel", "UNSPECIFIED"), ["releaseChannel.channel", "UNSPECIFIED"]),
    ("gke-cluster-security", "gcp:container/cluster:Cluster",
     with_(with_(GKE_OK, "workloadIdentityConfig", ...), "enableAutopilot", True),
     with_(GKE_OK, "workloadIdentityConfig", ...), ["workloadIdentityConfig.workloadPool"]),
    ("gke-deletion-protection", "gcp:container/cluster:Cluster", with_(GKE_OK, "deletionProtection", ...),
     with_(GKE_OK, "deletionProtection", False), ["deletionProtection", "'prod'"]),
    ("stateful-resources-protected", "gcp:storage/bucket:Bucket", BUCKET_OK,
     with_(BUCKET_OK, "forceDestroy", True), ["forceDestroy", "'prod'"]),
    ("ssl-policy-min-tls-1-2", "gcp:compute/sSLPolicy:SSLPolicy", with_(SSL_OK, "minTlsVersion", "TLS_1_3"),
     with_(SSL_OK, "minTlsVersion", "TLS_1_1"), ["minTlsVersion", "TLS_1_1"]),
    ("ssl-policy-min-tls-1-2", "gcp:compute/sSLPolicy:SSLPolicy", SSL_OK,
     with_(SSL_OK, "minTlsVersion", ...), ["minTlsVersion", "TLS_1_0"]),
    ("ssl-policy-modern-profile", "gcp:compute/sSLPolicy:SSLPolicy", with_(SSL_OK, "profile", "RESTRICTED"),
     with_(SSL_OK, "profile", ...), ["profile", "COMPATIBLE"]),
    ("pubsub-subscription-dead-letter", "gcp:pubsub/subscription:Subscription", SUB_OK,
     with_(SUB_OK, "deadLetterPolicy", ...), ["deadLetterPolicy.deadLetterTopic"]),
    ("pubsub-subscription-dead-letter", "gcp:pubsub/subscription:Subscription",
     {"topic": "projects/p/topics/prod-uploads-dead-letter"},
     {"topic": "projects/p/topics/prod-uploads-dead-letter-archive"}, ["deadLetterPolicy.deadLetterTopic"]),
    ("firewall-no-ingress-from-anywhere", "gcp:compute/firewall:Firewall", FW_OK,
     with_(FW_OK, "sourceRanges", ["35.191.0.0/16", "0.0.0.0/0"]), ["sourceRanges", "0.0.0.0/0"]),
    ("firewall-no-ingress-from-anywhere", "gcp:compute/firewall:Firewall",
     {"direction": "INGRESS", "denies": [{"protocol": "all"}], "sourceRanges": ["0.0.0.0/0"]},
     with_(FW_OK, "direction", ...) | {"sourceRanges": ["::/0"]}, ["::/0"]),
    ("firewall-no-ingress-from-anywhere", "gcp:compute/firewall:Firewall",
     with_(FW_OK, "sourceRanges", ...) | {"sourceTags": ["bastion"]},
     with_(FW_OK, "sourceRanges", ...), ["without sourceRanges", "0.0.0.0/0"]),
]


def _id(case) -> str:
    return f"{case[0]}:{case[4][0]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_policy_fires_on_bad_and_is_silent_on_good(case):
    name, rtype, good, bad, words = case
    policy = policy_named(name)
    if good is not None:
        assert run_policy(policy, make_args(rtype, good, name="good", protect=True)) == []
    messages = run_policy(policy, make_args(rtype, bad, name="bad-one", protect=True))
    assert len(messages) == 1, messages
    assert f"{rtype} 'bad-one'" in messages[0]
    for word in words:
        assert word in messages[0], (word, messages[0])


def test_every_policy_has_a_firing_case():
    assert {p.name for p in pack.POLICIES} == {c[0] for c in CASES}


def test_policies_ignore_other_resource_types():
    """A resource no rule is about is left alone by every policy."""
    args = make_args("gcp:monitoring/alertPolicy:AlertPolicy", {"displayName": "x", "role": "roles/owner"})
    for policy in pack.POLICIES:
        assert run_policy(policy, args) == [], policy.name


def test_names_unique_and_levels():
    names = [p.name for p in pack.POLICIES]
    assert len(names) == len(set(names))
    advisory = {p.name for p in pack.POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY}
    assert advisory == {"ssl-policy-modern-profile"}
    assert all(p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY) for p in pack.POLICIES)


# ----------------------------------------------------------------- stack-aware deletion protection

SQL = "gcp:sql/databaseInstance:DatabaseInstance"
UNPROTECTED_SQL = with_(with_(SQL_OK, "deletionProtection", False), "settings.deletionProtectionEnabled", False)


@pytest.mark.parametrize("stack, config, fires", [
    ("prod", None, True),                                             # default protectedStacks ["prod"]
    ("dev", None, False),
    ("dev", {"requireDeletionProtection": True}, True),              # forced on every stack
    ("prod", {"requireDeletionProtection": False}, False),           # forced off
    ("staging", {"protectedStacks": ["prod", "staging"]}, True),
    ("prod", {"protectedStacks": []}, False),
])
def test_deletion_protection_follows_the_stack_and_config(stack, config, fires):
    sql = run_policy(policy_named("cloudsql-deletion-protection"),
                     make_args(SQL, UNPROTECTED_SQL, stack=stack, config=config))
    gke = run_policy(policy_named("gke-deletion-protection"),
                     make_args("gcp:container/cluster:Cluster", with_(GKE_OK, "deletionProtection", False),
                               stack=stack, config=config))
    protect = run_policy(policy_named("stateful-resources-protected"),
                         make_args("gcp:storage/bucket:Bucket", with_(BUCKET_OK, "forceDestroy", True),
                                   stack=stack, config=config, protect=False))
    assert len(sql) == (2 if fires else 0), sql
    assert len(gke) == (1 if fires else 0), gke
    assert len(protect) == (2 if fires else 0), protect
    if fires:
        assert any("settings.deletionProtectionEnabled" in m for m in sql)
        assert any("protect resource option" in m for m in protect)
        assert any("forceDestroy" in m for m in protect)


@pytest.mark.parametrize("rtype", [SQL, "gcp:storage/bucket:Bucket", "gcp:container/cluster:Cluster"])
def test_protect_option_required_on_prod_stateful(rtype):
    policy = policy_named("stateful-resources-protected")
    props = {SQL: SQL_OK, "gcp:storage/bucket:Bucket": BUCKET_OK, "gcp:container/cluster:Cluster": GKE_OK}[rtype]
    assert run_policy(policy, make_args(rtype, props, protect=True)) == []
    messages = run_policy(policy, make_args(rtype, props, name="db", protect=False))
    assert messages == [f"{rtype} 'db': the protect resource option must be set on stack 'prod'."]
    assert run_policy(policy, make_args(rtype, props, stack="dev", protect=False)) == []


def test_dead_letter_pattern_is_configurable():
    policy = policy_named("pubsub-subscription-dead-letter")
    props = {"topic": "projects/p/topics/uploads-dlq"}
    assert len(run_policy(policy, make_args("gcp:pubsub/subscription:Subscription", props))) == 1
    assert run_policy(policy, make_args("gcp:pubsub/subscription:Subscription", props,
                                        config={"deadLetterTopicPattern": r"-dlq$"})) == []


def test_stack_of_urn():
    assert pack._stack_of("urn:pulumi:prod::print-platform::gcp:storage/bucket:Bucket::uploads") == "prod"
    assert pack._stack_of("urn:pulumi:dev::p::a$b::c") == "dev"
    assert pack._stack_of("not-a-urn") == ""
