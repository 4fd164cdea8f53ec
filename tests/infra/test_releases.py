"""The Helm releases component (infra/releases.py) under Pulumi mocks, once per real stack.

Registrations are recorded at the mock monitor (type, name, parent, provider,
protect, dependencies, inputs) and checked after the program finished; no
assertion lives inside an ``apply``. The stack outputs fed to the component are
derived from the stack's own settings, so a stack-file change is reflected.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from infra import releases
from infra.settings import StackSettings, load_stack_settings

STACKS = ["dev", "prod"]
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
IAM_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
DIGESTS = {"files-api": "sha256:" + "a" * 64, "extractor": "sha256:" + "b" * 64}


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns each resource's inputs as its outputs (a Release's ``status`` is made up)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == RELEASE:
            outputs["status"] = {"status": "deployed", "name": args.inputs.get("name")}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


@dataclass
class Registration:
    type: str
    name: str
    parent: str
    provider: str
    protect: bool
    dependencies: list[str]
    inputs: dict[str, Any]
    urn: str = ""


@dataclass
class Run:
    stack: str
    settings: StackSettings
    outputs: releases.StackOutputs
    registrations: list[Registration] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == typ]

    def release(self, name: str) -> Registration:
        found = [r for r in self.of_type(RELEASE) if r.name == name]
        assert len(found) == 1, f"{self.stack}: expected one Release {name!r}, got {[r.name for r in found]}"
        return found[0]


def _record_registrations(run: Run) -> None:
    """Wrap the mock monitor's RegisterResource to keep what the engine would receive."""
    monitor = pulumi.runtime.settings.get_monitor()
    original = monitor.RegisterResource

    def register(request):
        response = original(request)
        run.registrations.append(Registration(
            type=request.type, name=request.name, parent=request.parent, provider=request.provider,
            protect=request.protect, dependencies=list(request.dependencies),
            inputs=pulumi.runtime.rpc.deserialize_properties(request.object), urn=response.urn))
        return response

    monitor.RegisterResource = register


def make_args(settings: StackSettings, outputs: releases.StackOutputs, provider: pulumi.ProviderResource,
              **overrides: Any) -> releases.ReleasesArgs:
    """ReleasesArgs as infra/program.py builds them, with Outputs where resources would give them."""
    out = pulumi.Output.from_input
    args = releases.ReleasesArgs(
        namespace=out(settings.names.namespace),
        k8s_provider=provider,
        environment_values={s: releases.load_environment_values(settings.stack, s) for s in releases.SERVICES},
        project_id=settings.project,
        image_repository=out(outputs.image_repository),
        image_digests=dict(outputs.image_digests),
        service_account_emails={s: out(e) for s, e in outputs.service_account_emails.items()},
        database_name=out(outputs.database_name),
        uploads_bucket=out(outputs.uploads_bucket),
        extractor_subscription=out(outputs.extractor_subscription),
        instance_connection_name=out(outputs.instance_connection_name),
        gateway=releases.GatewayRef(
            name=outputs.gateway.name, namespace=out(outputs.gateway.namespace),
            section_name=outputs.gateway.section_name, hostname=outputs.gateway.hostname),
        armor_policy_name=out(outputs.armor_policy_name),
        iap=outputs.iap,
        cloudsql_private_cidrs=list(outputs.cloudsql_private_cidrs),
        database_users={s: out(u) for s, u in outputs.database_users.items()},
        cluster_dns_cidrs=list(outputs.cluster_dns_cidrs),
        migrations_service_account_name=out(
            f"projects/{settings.project}/serviceAccounts/{outputs.service_account_emails['files-api']}"),
        workload_pool=out(f"{settings.project}.svc.id.goog"),
    )
    return replace(args, **overrides) if overrides else args


def run_component(stack: str, digests: dict[str, str] | None = None, **overrides: Any) -> Run:
    settings = load_stack_settings(stack)
    outputs = replace(releases.stack_outputs_from_settings(settings), image_digests=dict(DIGESTS if digests is None else digests))
    pulumi.runtime.set_mocks(RecordingMocks(), project="print-platform", stack=stack, preview=False)
    run = Run(stack, settings, outputs)
    _record_registrations(run)

    @pulumi.runtime.test
    def program():
        provider = k8s.Provider("gke")
        component = releases.Releases("apps", make_args(settings, outputs, provider, **overrides))
        return pulumi.Output.all(*[r.urn for r in component.releases.values()])

    program()
    assert run.registrations, "nothing was registered"
    return run


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> Run:
    return run_component(request.param)


def test_two_releases_per_stack_named_after_the_services(run):
    names = [r.name for r in run.of_type(RELEASE)]
    # Spelled out, not derived: a service dropped from infra.settings.SERVICES must fail here too.
    assert names == ["files-api", "extractor"] == list(releases.SERVICES)
    for reg in run.of_type(RELEASE):
        assert reg.inputs["name"] == reg.name
        assert reg.inputs["chart"].endswith("charts/print-service")


def test_releases_are_children_of_the_component_and_use_the_gke_provider(run):
    component = [r for r in run.registrations if r.type == "print-platform:apps:Releases"]
    assert len(component) == 1
    provider = [r for r in run.registrations if r.type == "pulumi:providers:kubernetes"]
    assert len(provider) == 1
    for reg in run.of_type(RELEASE):
        assert reg.parent == component[0].urn
        assert reg.provider.startswith(provider[0].urn + "::"), reg.provider


def test_release_settings_atomic_wait_namespace(run):
    for reg in run.of_type(RELEASE):
        inputs = reg.inputs
        assert inputs["namespace"] == run.settings.names.namespace
        assert inputs["createNamespace"] is False
        assert inputs["atomic"] is True
        assert inputs["cleanupOnFail"] is True
        assert inputs["waitForJobs"] is True
        assert inputs.get("skipAwait") in (False, None)
        assert inputs["timeout"] == 600
        assert inputs["maxHistory"] >= 2


def test_releases_are_not_protected(run):
    """Releases are stateless (Helm rolls a failed upgrade back); `protect` is for stateful resources."""
    for reg in run.of_type(RELEASE):
        assert reg.protect is False


def test_protect_option_reaches_the_releases():
    run = run_component("dev", protect=True)
    assert [r.protect for r in run.of_type(RELEASE)] == [True, True]


def test_extractor_waits_for_files_api_whose_hook_migrates_the_schema(run):
    files_api, extractor = run.release("files-api"), run.release("extractor")
    assert files_api.urn in extractor.dependencies


def test_values_carry_the_stack_outputs(run):
    settings, names = run.settings, run.settings.names
    for service in releases.SERVICES:
        values = run.release(service).inputs["values"]
        email = names.service_account_email(service, settings.project)
        assert values["serviceAccount"]["gcpServiceAccount"] == email
        assert values["database"] == {**values["database"], "name": names.database_name,
                                      "user": names.database_users[service]}
        assert values["cloudSqlProxy"]["instanceConnectionName"] == \
            f"{settings.project}:{settings.region}:{names.sql_instance}"
        assert values["app"]["googleCloudProject"] == settings.project
        assert values["app"]["uploadsBucket"] == names.uploads_bucket
        assert values["image"] == {
            "repository": f"{settings.region}-docker.pkg.dev/{settings.project}/{names.registry_repository}/{service}",
            "digest": DIGESTS[service]}
        assert values["chartChecksum"] == releases.chart_checksum()
        assert values["fullnameOverride"] == names.kubernetes_service_accounts[service]
        assert values["networkPolicy"] == {"cloudSqlCidrs": [settings.config.network.private_service_access_cidr],
                                           "dnsCidrs": [settings.config.network.services_cidr]}
    extractor = run.release("extractor").inputs["values"]
    assert extractor["app"]["uploadsSubscription"] == names.extractor_subscription
    assert "route" not in extractor and "migrations" not in extractor


def test_files_api_values_route_armor_iap_and_migrations(run):
    values = run.release("files-api").inputs["values"]
    lb = run.settings.config.load_balancer
    assert values["route"]["enabled"] is True
    assert values["route"]["gateway"] == {"name": "external", "namespace": run.settings.names.namespace,
                                          "sectionName": "https"}
    assert values["route"]["hostnames"] == [lb.domain]
    assert values["route"]["securityPolicy"] == f"{run.settings.names.prefix}-armor"
    assert values["route"]["iap"]["enabled"] is lb.iap.enabled
    assert values["migrations"] == {"enabled": True,
                                    "grantTo": [run.settings.names.database_users["extractor"],
                                                run.settings.names.reconciler_database_user]}


def test_values_keep_the_environment_data(run):
    for service in releases.SERVICES:
        env = releases.load_environment_values(run.stack, service)
        values = run.release(service).inputs["values"]
        assert values["resources"] == env["resources"]
        assert values["autoscaling"] == env["autoscaling"]
        assert values["app"]["logLevel"] == env["app"]["logLevel"]


def test_a_service_without_an_image_digest_gets_no_release():
    run = run_component("dev", digests={"files-api": DIGESTS["files-api"]})
    assert [r.name for r in run.of_type(RELEASE)] == ["files-api"]


def test_custom_iap_client_secret_goes_to_a_secret_not_to_the_values():
    iap = releases.IapSettings(oauth_client_id="123.apps.googleusercontent.com", oauth_client_secret="s3cr3t")
    run = run_component("prod", iap=iap)
    secrets = run.of_type(SECRET)
    assert [s.inputs["metadata"]["name"] for s in secrets] == [releases.IAP_SECRET_NAME]
    values = run.release("files-api").inputs["values"]
    assert values["route"]["iap"] == {"enabled": True, "clientID": "123.apps.googleusercontent.com",
                                      "oauth2ClientSecretName": releases.IAP_SECRET_NAME}
    assert "s3cr3t" not in repr(run.release("files-api").inputs)
    assert secrets[0].urn in run.release("files-api").dependencies


def test_args_reject_missing_environment_values():
    settings = load_stack_settings("dev")
    with pytest.raises(releases.ReleaseValuesError, match=r"environment_values\['extractor'\]"):
        releases.ReleasesArgs(
            namespace="print-platform", k8s_provider=k8s.Provider("p"),
            environment_values={"files-api": {}}, project_id=settings.project, image_repository="r",
            image_digests=DIGESTS, service_account_emails={s: "e" for s in releases.SERVICES},
            database_name="d", uploads_bucket="b", extractor_subscription="s")


def test_migration_hook_service_account_gets_workload_identity(run):
    bindings = run.of_type(IAM_MEMBER)
    assert len(bindings) == 1
    binding = bindings[0]
    project, ns = run.settings.project, run.settings.names.namespace
    assert binding.inputs["role"] == "roles/iam.workloadIdentityUser"
    assert binding.inputs["member"] == f"serviceAccount:{project}.svc.id.goog[{ns}/files-api-migrate]"
    assert binding.inputs["serviceAccountId"] == \
        f"projects/{project}/serviceAccounts/{run.outputs.service_account_emails['files-api']}"
    assert binding.urn in run.release("files-api").dependencies


# -- /tmp holds the worst case of spooled uploads (check_tmp_capacity) ------------------------------

MiB = 2**20


def _environments(tmp_path, **files: str):
    """A copy of environments/ with ``files`` ({"dev/files-api.yaml": text, ...}) replaced."""
    import shutil

    shutil.copytree(releases.ENVIRONMENTS_DIR, tmp_path / "environments")
    for name, text in files.items():
        (tmp_path / "environments" / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("stack", STACKS)
def test_files_api_tmp_holds_every_workers_concurrent_uploads(stack):
    """The stack files set WEB_CONCURRENCY / MAX_CONCURRENT_UPLOADS explicitly and /tmp covers their product."""
    chart = releases.deep_merge(yaml.safe_load((releases.CHART_DIR / "values.yaml").read_text()),
                                releases.load_environment_values(stack, "files-api"))
    app = chart["app"]
    assert app["workers"] >= 1 and app["maxConcurrentUploads"] >= 1 and app["maxUploadBytes"] == 256 * MiB
    worst = app["workers"] * app["maxConcurrentUploads"] * app["maxUploadBytes"] + releases.TMP_MARGIN_BYTES
    assert worst <= releases.quantity_bytes(chart["tmpSizeLimit"]) \
        < releases.quantity_bytes(chart["resources"]["requests"]["ephemeral-storage"])
    if stack == "dev":
        assert app["maxConcurrentUploads"] == 1, "dev's 768Mi /tmp holds 2 workers x 1 upload, not x 2"


def test_tmp_smaller_than_the_worst_case_is_rejected_naming_file_and_key(tmp_path):
    """The combination dev had (768Mi for 2 workers x 2 uploads x 256 MiB) fails, naming the file and the numbers."""
    root = _environments(tmp_path, **{"dev/files-api.yaml": (
        "tmpSizeLimit: 768Mi\nresources:\n  requests: {cpu: 100m, memory: 256Mi, ephemeral-storage: 1Gi}\n"
        "  limits: {cpu: '1', memory: 512Mi, ephemeral-storage: 1Gi}\napp:\n  maxConcurrentUploads: 2\n")})
    with pytest.raises(releases.ReleaseValuesError) as info:
        releases.load_environment_values("dev", "files-api", root)
    message = str(info.value)
    assert message.startswith("releases: environments/dev/files-api.yaml: tmpSizeLimit: 768Mi (805306368 bytes)")
    assert "1140850688 bytes (1088 MiB)" in message
    assert "app.workers 2 (environments/common/files-api.yaml)" in message
    assert "app.maxConcurrentUploads 2 (environments/dev/files-api.yaml)" in message
    assert "app.maxUploadBytes 268435456 (environments/common/files-api.yaml)" in message


@pytest.mark.parametrize("tmp, ok", [("128Mi", True), (128 * MiB, True), ("134217727", False), ("127Mi", False)])
def test_tmp_check_boundary_is_product_plus_margin(tmp_path, tmp, ok):
    """1 worker x 1 upload x 64 MiB + 64 MiB margin = 128 MiB exactly: enough; one byte less is not."""
    assert releases.TMP_MARGIN_BYTES == 64 * MiB
    root = _environments(tmp_path, **{"dev/files-api.yaml": (
        f"tmpSizeLimit: {tmp if isinstance(tmp, int) else repr(tmp)}\n"
        f"app:\n  workers: 1\n  maxConcurrentUploads: 1\n  maxUploadBytes: {64 * MiB}\n")})
    if ok:
        assert releases.load_environment_values("dev", "files-api", root)["app"]["workers"] == 1
    else:
        with pytest.raises(releases.ReleaseValuesError, match="dev/files-api.yaml: tmpSizeLimit: .* is below the worst"):
            releases.load_environment_values("dev", "files-api", root)


def test_upload_limit_without_explicit_workers_and_concurrency_is_rejected(tmp_path):
    """The chart must not rely on gunicorn's / the app's defaults: unset (chart default 0) is an error."""
    common = (releases.ENVIRONMENTS_DIR / "common" / "files-api.yaml").read_text()
    common = common.replace("  workers: 2\n", "")
    root = _environments(tmp_path, **{"common/files-api.yaml": common})
    with pytest.raises(releases.ReleaseValuesError,
                       match=r"environments/common/files-api.yaml: app.maxUploadBytes: needs app.workers "
                             r"\(0, charts/print-service/values.yaml\)"):
        releases.load_environment_values("dev", "files-api", root)


def test_tmp_must_stay_below_the_ephemeral_storage_request(tmp_path):
    root = _environments(tmp_path, **{"prod/files-api.yaml": (
        "tmpSizeLimit: 2Gi\nresources:\n  requests: {cpu: 250m, memory: 512Mi, ephemeral-storage: 2Gi}\n"
        "  limits: {cpu: '2', memory: 1Gi, ephemeral-storage: 2Gi}\n")})
    with pytest.raises(releases.ReleaseValuesError,
                       match=r"environments/prod/files-api.yaml: tmpSizeLimit: 2Gi must be below "
                             r"resources.requests.ephemeral-storage 2Gi \(environments/prod/files-api.yaml\)"):
        releases.load_environment_values("prod", "files-api", root)


@pytest.mark.parametrize("quantity, expected", [
    ("768Mi", 768 * MiB), ("1.5Gi", 1536 * MiB), ("1G", 10**9), ("64k", 64000), (1024, 1024), ("1500m", 2)])
def test_quantity_bytes(quantity, expected):
    assert releases.quantity_bytes(quantity) == expected


@pytest.mark.parametrize("quantity", ["1GB", "-1Mi", None, "", True])
def test_quantity_bytes_rejects_what_the_schema_does(quantity):
    with pytest.raises(releases.ReleaseValuesError, match="not a Kubernetes quantity"):
        releases.quantity_bytes(quantity)
