"""Invariants of the bootstrap program per committed stack file: state bucket hardening, key
rotation, the workload identity provider's condition (evaluated as CEL against GitHub token
claims), least-privilege CI accounts (roles from infra/apis.py, no basic roles, no keys),
API dependencies per project, and the outputs the workflows consume."""
from __future__ import annotations

import json
import re

import celpy
import pytest

from infra import apis
from infra.bootstrap import ci_identity, federation, program
from infra.bootstrap.settings import BootstrapSettings
from tools import preview
from tools.mock_runtime import Capture

BASIC_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
IAM_TYPES = {
    "gcp:projects/iAMMember:IAMMember",
    "gcp:serviceaccount/iAMMember:IAMMember",
    "gcp:storage/bucketIAMMember:BucketIAMMember",
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember",
}
DAY = 86400


def _iam(run: Capture):
    return [r for r in run.resources if r.type in IAM_TYPES]


def test_urns_are_unique(run: Capture):
    urns = [r.urn for r in run.registrations]
    assert len(urns) == len(set(urns))


def test_state_bucket_is_hardened_and_protected(run: Capture, settings: BootstrapSettings):
    bucket = run.one("gcp:storage/bucket:Bucket")
    i = bucket.inputs
    assert i["name"] == settings.names.state_bucket and i["project"] == settings.project
    assert i["location"] == settings.region
    assert i["uniformBucketLevelAccess"] is True
    assert i["publicAccessPrevention"] == "enforced"
    assert i["versioning"] == {"enabled": True}
    assert i["forceDestroy"] is False
    (rule,) = i["lifecycleRules"]
    assert rule["action"]["type"] == "Delete"
    assert rule["condition"]["withState"] == "ARCHIVED"
    assert rule["condition"]["daysSinceNoncurrentTime"] == settings.config.state.noncurrent_version_retention_days
    assert bucket.protect


def test_one_rotating_protected_key_per_stack(run: Capture, settings: BootstrapSettings):
    ring = run.one("gcp:kms/keyRing:KeyRing")
    assert ring.protect and ring.inputs["location"] == settings.region and ring.inputs["project"] == settings.project
    keys = {r.inputs["name"]: r for r in run.of_type("gcp:kms/cryptoKey:CryptoKey")}
    assert set(keys) == set(settings.names.keys.values())
    for key in keys.values():
        assert key.protect
        assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"
        assert key.inputs["rotationPeriod"] == f"{settings.config.kms.rotation_period_days * DAY}s"
        assert key.inputs["versionTemplate"]["algorithm"] == "GOOGLE_SYMMETRIC_ENCRYPTION"
        assert ring.urn in key.dependencies


def test_provider_trusts_github_and_pins_the_repository(run: Capture, settings: BootstrapSettings):
    pool = run.one("gcp:iam/workloadIdentityPool:WorkloadIdentityPool")
    provider = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider")
    assert pool.protect and provider.protect
    assert provider.inputs["oidc"]["issuerUri"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["attributeMapping"]["google.subject"] == "assertion.sub"
    condition = provider.inputs["attributeCondition"]
    repo = settings.config.github.repository
    assert condition.startswith(f"assertion.repository == '{repo}' && (")
    for stack, ci in settings.config.stacks.items():
        assert f"repo:{repo}:environment:{stack}" in condition
        for ref in ci.deploy_refs:
            assert ref.rstrip("*") in condition


def _claims(repository: str, sub: str, ref: str, event: str = "push") -> dict:
    return {"repository": repository, "sub": sub, "ref": ref, "event_name": event,
            "repository_owner": repository.split("/")[0]}


def _admits(condition: str, claims: dict) -> bool:
    env = celpy.Environment()
    result = env.program(env.compile(condition)).evaluate({"assertion": celpy.json_to_cel(claims)})
    return bool(result)


def test_attribute_condition_admits_only_this_repository_on_the_deploy_refs(run: Capture, settings: BootstrapSettings):
    """The real condition string, evaluated as CEL against GitHub token claim sets."""
    condition = run.one("gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider").inputs["attributeCondition"]
    repo = settings.config.github.repository
    env = lambda stack: f"repo:{repo}:environment:{stack}"  # noqa: E731
    pr = f"repo:{repo}:pull_request"
    admitted = [_claims(repo, pr, "refs/pull/7/merge", "pull_request")]
    refused = [
        _claims("someone-else/print-platform", pr, "refs/pull/7/merge", "pull_request"),
        _claims("someone-else/print-platform", "repo:someone-else/print-platform:environment:prod", "refs/heads/main"),
        # this repository, but a job outside any environment (push to main, workflow_dispatch)
        _claims(repo, f"repo:{repo}:ref:refs/heads/main", "refs/heads/main"),
        # a pull request's job that declares a deploy environment
        _claims(repo, env("dev"), "refs/pull/7/merge", "pull_request"),
        # an environment that is not a stack
        _claims(repo, env("staging"), "refs/heads/main"),
    ]
    for stack, ci in settings.config.stacks.items():
        for ref in ci.deploy_refs:
            admitted.append(_claims(repo, env(stack), ref.replace("*", "1.2.3")))
        refused.append(_claims(repo, env(stack), "refs/heads/feature/x"))
        refused.append(_claims(repo, env(stack), "refs/tags/not-a-release"))
    for claims in admitted:
        assert _admits(condition, claims), claims
    for claims in refused:
        assert not _admits(condition, claims), claims


def test_condition_quotes_what_it_embeds():
    condition = federation.attribute_condition("o/r", {"dev": ["refs/heads/it's"]})
    assert _admits(condition, _claims("o/r", "repo:o/r:environment:dev", "refs/heads/it's"))
    assert not _admits(condition, _claims("o/r", "repo:o/r:environment:dev", "refs/heads/it"))


def test_service_accounts_are_impersonable_only_by_their_federated_subject(run: Capture, settings: BootstrapSettings):
    pool_name = run.platform.federation.pool  # the resource; its name is mocked as GCP forms it
    repo = settings.config.github.repository
    bindings = run.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert len(bindings) == 2 * len(settings.config.stacks)
    accounts = {r.urn: r for r in run.of_type("gcp:serviceaccount/account:Account")}
    for binding in bindings:
        assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
        member = binding.inputs["member"]
        assert re.fullmatch(r"principal://iam\.googleapis\.com/projects/\d+/locations/global/workloadIdentityPools/"
                            rf"{settings.names.pool}/subject/repo:{re.escape(repo)}:(pull_request|environment:[a-z0-9]+)", member)
        account = next(a for a in accounts.values() if a.urn in binding.dependencies)
        account_id = account.inputs["accountId"]
        stack, kind = account_id.rsplit("-", 1)
        expected = f"repo:{repo}:pull_request" if kind == "preview" else f"repo:{repo}:environment:{stack}"
        assert member.endswith("/subject/" + expected), (account_id, member)
    assert pool_name is not None


def test_no_basic_roles_no_keys_no_public_members(run: Capture):
    assert not [r for r in run.resources if r.type == "gcp:serviceaccount/key:Key"]
    for r in _iam(run):
        assert r.inputs["role"] not in BASIC_ROLES, r.urn
        assert r.inputs["member"] not in ("allUsers", "allAuthenticatedUsers"), r.urn


def test_ci_roles_on_each_stack_project_come_from_the_api_list(run: Capture, settings: BootstrapSettings):
    members = run.of_type("gcp:projects/iAMMember:IAMMember")
    for stack, platform in settings.platform.items():
        listed = apis.platform_apis(platform.config.load_balancer.iap.enabled)
        deploy = f"serviceAccount:{settings.names.deploy_accounts[stack]}@{settings.project}.iam.gserviceaccount.com"
        preview_sa = f"serviceAccount:{settings.names.preview_accounts[stack]}@{settings.project}.iam.gserviceaccount.com"
        on_project = [m for m in members if m.inputs["project"] == platform.project]
        assert sorted(m.inputs["role"] for m in on_project if m.inputs["member"] == deploy) == list(apis.deploy_roles(listed))
        custom = f"projects/{platform.project}/roles/{settings.names.preview_role}"
        assert sorted(m.inputs["role"] for m in on_project if m.inputs["member"] == preview_sa) == sorted(
            [*apis.preview_roles(listed), custom])
        assert {m.inputs["member"] for m in on_project} == {deploy, preview_sa}
        (role,) = [r for r in run.of_type("gcp:projects/iAMCustomRole:IAMCustomRole") if r.inputs["project"] == platform.project]
        assert sorted(role.inputs["permissions"]) == sorted(ci_identity.PREVIEW_READER_PERMISSIONS)
    # nothing is granted on the seed project itself
    assert not [m for m in members if m.inputs["project"] == settings.project]


def test_state_and_key_grants_are_per_stack(run: Capture, settings: BootstrapSettings):
    bucket = settings.names.state_bucket
    grants = run.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    keys = run.of_type("gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember")
    for stack in settings.config.stacks:
        for kind, object_role, key_role in (("deploy", "roles/storage.objectUser", "roles/cloudkms.cryptoKeyEncrypterDecrypter"),
                                            ("preview", "roles/storage.objectViewer", "roles/cloudkms.cryptoKeyDecrypter")):
            account = getattr(settings.names, f"{kind}_accounts")[stack]
            member = f"serviceAccount:{account}@{settings.project}.iam.gserviceaccount.com"
            mine = {g.inputs["role"]: g for g in grants if g.inputs["member"] == member}
            assert set(mine) == {object_role, "roles/storage.legacyBucketReader"}
            assert mine[object_role].inputs["condition"]["expression"] == (
                f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/{stack}/')")
            assert "condition" not in mine["roles/storage.legacyBucketReader"].inputs
            (key,) = [k for k in keys if k.inputs["member"] == member]
            assert key.inputs["role"] == key_role
            assert key.inputs["cryptoKeyId"].endswith(f"/cryptoKeys/{settings.names.keys[stack]}")


def test_apis_enabled_per_project_and_every_resource_waits_for_its_own(run: Capture, settings: BootstrapSettings):
    services = {(r.inputs["project"], r.inputs["service"]): r for r in run.of_type("gcp:projects/service:Service")}
    assert {s for p, s in services if p == settings.project} == {s for s, _ in program.SEED_APIS}
    for platform in settings.platform.values():
        assert {s for p, s in services if p == platform.project} == set(apis.before_program_apis())
    for service in services.values():
        assert service.inputs["disableOnDestroy"] is False and service.inputs["disableDependentServices"] is False
    checked = 0
    for r in run.resources:
        if not r.custom or r.type == "gcp:projects/service:Service":
            continue
        project = r.inputs.get("project", settings.project)
        api = apis.api_for_type(r.type)
        assert (project, api) in services, f"{r.urn}: {api} is not enabled in {project}"
        assert services[(project, api)].urn in r.dependencies, f"{r.urn} does not wait for {api} in {project}"
        checked += 1
    assert checked > 40


def test_outputs_are_what_the_workflows_and_docs_consume(run: Capture, settings: BootstrapSettings):
    out = run.outputs
    provider = out["workload_identity_provider"]
    assert re.fullmatch(rf"projects/\d+/locations/global/workloadIdentityPools/{settings.names.pool}/providers/{settings.names.provider}", provider)
    stacks = set(settings.config.stacks)
    assert set(out["backend_urls"]) == set(out["secrets_providers"]) == stacks
    for stack in stacks:
        assert out["backend_urls"][stack] == f"gs://{settings.names.state_bucket}/{stack}"
        assert out["secrets_providers"][stack] == (
            f"gcpkms://projects/{settings.project}/locations/{settings.region}/keyRings/"
            f"{settings.names.key_ring}/cryptoKeys/{settings.names.keys[stack]}")
        assert out["github_environment_variables"][stack] == {
            "GCP_DEPLOY_SERVICE_ACCOUNT": out["deploy_service_accounts"][stack],
            "PULUMI_BACKEND_URL": out["backend_urls"][stack],
        }
        assert out["github_repository_variables"][f"GCP_PREVIEW_SERVICE_ACCOUNT_{stack.upper()}"] == out["preview_service_accounts"][stack]
        assert out["github_repository_variables"][f"PULUMI_BACKEND_URL_{stack.upper()}"] == out["backend_urls"][stack]
        assert out["stack_projects"][stack] == settings.platform[stack].project
    assert out["github_repository_variables"]["GCP_WORKLOAD_IDENTITY_PROVIDER"] == provider


def test_offline_preview_prints_the_plan_as_json(capsys: pytest.CaptureFixture[str], run: Capture, stack: str):
    assert preview.main(["--stack", stack, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["stack"] == stack
    assert [r["urn"] for r in document["resources"]] == sorted(r.urn for r in run.registrations)
    assert list(document["resources"][0]) == ["urn", "type", "name", "parent", "provider", "protect", "dependencies", "inputs"]
    assert document["outputs"] == json.loads(json.dumps(run.outputs))
