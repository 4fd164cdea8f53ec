"""IAM invariants per stack: one service account per service, Workload Identity bound to the
cluster's pool, least-privilege grants scoped to resources, no keys, no basic roles."""
from __future__ import annotations

from infra.settings import RECONCILER, SERVICES, StackSettings
from tools.mock_runtime import Capture

ACCOUNT = "gcp:serviceaccount/account:Account"
#: Every identity with its own Google service account: the services and the reconciler.
IDENTITIES = (*SERVICES, RECONCILER)
BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
IAM_TYPES = (
    "gcp:projects/iAMMember:IAMMember",
    "gcp:projects/iAMBinding:IAMBinding",
    "gcp:projects/iAMPolicy:IAMPolicy",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:pubsub/topicIAMMember:TopicIAMMember",
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
)


def _email(settings: StackSettings, service: str) -> str:
    if service == RECONCILER:
        return f"{settings.names.reconciler_service_account}@{settings.project}.iam.gserviceaccount.com"
    return settings.names.service_account_email(service, settings.project)


def _ksa(settings: StackSettings, service: str) -> str:
    if service == RECONCILER:
        return settings.names.reconciler_kubernetes_service_account
    return settings.names.kubernetes_service_accounts[service]


def test_one_service_account_per_service(run: Capture, settings: StackSettings):
    accounts = {a.name: a for a in run.of_type(ACCOUNT) if a.name in IDENTITIES}
    assert set(accounts) == set(IDENTITIES)
    for service, account in accounts.items():
        assert account.inputs["accountId"] == (settings.names.service_accounts.get(service)
                                               or settings.names.reconciler_service_account)
    assert run.outputs["service_account_emails"] == {s: _email(settings, s) for s in IDENTITIES}


def test_no_service_account_keys_and_no_basic_roles(run: Capture):
    assert not [r for r in run.resources if r.type.startswith("gcp:serviceaccount/key")]
    for r in run.resources:
        if r.type.startswith("gcp:") and "role" in r.inputs:
            assert r.inputs["role"] not in BASIC_ROLES, r.urn
    assert not run.of_type("gcp:projects/iAMPolicy:IAMPolicy")
    assert not run.of_type("gcp:projects/iAMBinding:IAMBinding")


def test_workload_identity_binding_waits_for_the_cluster(run: Capture, settings: StackSettings):
    cluster = run.one("gcp:container/cluster:Cluster")
    for service in IDENTITIES:
        binding = run.one("gcp:serviceaccount/iAMMember:IAMMember", f"{service}-workload-identity")
        ksa = _ksa(settings, service)
        assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
        assert binding.inputs["member"] == (
            f"serviceAccount:{settings.project}.svc.id.goog[{settings.names.namespace}/{ksa}]")
        assert binding.inputs["serviceAccountId"] == (
            f"projects/{settings.project}/serviceAccounts/{_email(settings, service)}")
        assert cluster.urn in binding.dependencies


def _service_grants(run: Capture, settings: StackSettings) -> dict[str, set[tuple[str, str, str]]]:
    """``{service: {(resource type, scope, role)}}`` for every grant to a service account."""
    members = {f"serviceAccount:{_email(settings, s)}": s for s in IDENTITIES}
    grants: dict[str, set[tuple[str, str, str]]] = {s: set() for s in IDENTITIES}
    for type_ in IAM_TYPES:
        for r in run.of_type(type_):
            service = members.get(r.inputs.get("member"))
            if service is None:
                continue
            scope = r.inputs.get("bucket") or r.inputs.get("subscription") or r.inputs.get("topic") \
                or r.inputs.get("repository") or r.inputs.get("project")
            grants[service].add((type_.split(":")[1], scope, r.inputs["role"]))
    return grants


def test_grants_are_least_privilege_and_resource_scoped(run: Capture, settings: StackSettings):
    n, p = settings.names, settings.project
    assert _service_grants(run, settings) == {
        "files-api": {
            ("storage/bucketIAMMember", n.uploads_bucket, "roles/storage.objectUser"),
            ("storage/bucketIAMMember", n.uploads_bucket, "roles/storage.legacyBucketReader"),
            ("projects/iAMMember", p, "roles/cloudsql.client"),
            ("projects/iAMMember", p, "roles/cloudsql.instanceUser"),
        },
        "extractor": {
            ("storage/bucketIAMMember", n.uploads_bucket, "roles/storage.objectViewer"),
            ("pubsub/subscriptionIAMMember", n.extractor_subscription, "roles/pubsub.subscriber"),
            ("projects/iAMMember", p, "roles/cloudsql.client"),
            ("projects/iAMMember", p, "roles/cloudsql.instanceUser"),
        },
        # Re-drives: reads an object's metadata, publishes to the uploads topic only, drains the
        # dead-letter subscription only; its own IAM database user.
        "reconciler": {
            ("storage/bucketIAMMember", n.uploads_bucket, "roles/storage.objectViewer"),
            ("pubsub/topicIAMMember", n.uploads_topic, "roles/pubsub.publisher"),
            ("pubsub/subscriptionIAMMember", n.dead_letter_subscription, "roles/pubsub.subscriber"),
            ("projects/iAMMember", p, "roles/cloudsql.client"),
            ("projects/iAMMember", p, "roles/cloudsql.instanceUser"),
        },
    }


def test_project_level_cloudsql_grants_are_conditioned_on_the_instance(run: Capture, settings: StackSettings):
    members = {f"serviceAccount:{_email(settings, s)}" for s in IDENTITIES}
    project_grants = [r for r in run.of_type("gcp:projects/iAMMember:IAMMember") if r.inputs["member"] in members]
    assert len(project_grants) == 2 * len(IDENTITIES)
    instance = f"projects/{settings.project}/instances/{settings.names.sql_instance}"
    for grant in project_grants:
        expression = grant.inputs["condition"]["expression"]
        assert f'resource.name == "{instance}"' in expression, grant.name
        assert 'resource.type == "sqladmin.googleapis.com/Instance"' in expression


def test_every_project_level_grant_is_known(run: Capture, settings: StackSettings):
    """A new unconditioned project-wide grant must be a deliberate change of this test."""
    node = f"serviceAccount:{settings.names.node_service_account}@{settings.project}.iam.gserviceaccount.com"
    for grant in run.of_type("gcp:projects/iAMMember:IAMMember"):
        if "condition" not in grant.inputs:
            assert (grant.inputs["member"], grant.inputs["role"]) == (node, "roles/container.defaultNodeServiceAccount")
