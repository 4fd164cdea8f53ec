"""Run the real Pulumi program under Pulumi's mock runtime and capture what it registers.

Used by the offline preview (``tools/preview.py``) and the infra tests
(``tests/infra/conftest.py``), so both look at the same captured registrations.

How it works:

1. The stack file is read (:func:`infra.settings.read_stack_file`; ``secure:`` values
   become ``"[secret]"``) and loaded into the Pulumi config exactly as the engine would
   pass it (structured values JSON-encoded), with the secret keys marked.
2. ``pulumi.runtime.set_mocks`` installs :class:`PlatformMocks` (realistic outputs:
   service account ``email``, SQL ``connectionName``/``privateIpAddress``, cluster
   ``endpoint``/``masterAuth``/``workloadIdentityConfig``, ...) and a
   :class:`RecordingMonitor` that records every ``RegisterResource`` request: type,
   name, parent, provider, protect flag, dependencies and the inputs as the engine
   receives them (camelCase property names; secrets masked as ``"[secret]"``).
3. ``infra.program.run`` runs (settings validation, then every component), and the
   stack outputs are resolved.

No credentials, no Pulumi CLI, no network.
"""
from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.settings import PROJECT, SECRET_PLACEHOLDER, ConfigError, read_stack_file

#: How an unknown (computed during preview) value is shown.
UNKNOWN_PLACEHOLDER = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
#: Resources whose outputs exist only once a real ``pulumi up`` ran them: the image
#: builds (``digest``, ``ref``, ``contextHash``; ``build_on_preview`` is off). The mock
#: answers them like the engine answers a create it has not run yet: outputs
#: unknown, so a release's ``values.image.digest`` shows as ``[unknown]``.
UNKNOWN_OUTPUT_TYPES = frozenset({"docker-build:index:Image"})

# A Pulumi engine runs one program per process; so does the mock runtime. Serialise runs.
_RUN_LOCK = threading.Lock()


@dataclass(frozen=True)
class Registration:
    """One ``RegisterResource`` request as the engine would receive it.

    Attributes:
        urn: the resource URN. type: type token (``gcp:container/cluster:Cluster``).
        name: logical name. parent: parent URN or None (the stack has none).
        provider: explicit provider reference (``<urn>::<id>``) or None for the default provider.
        protect: Pulumi ``protect`` flag. custom: False for component resources.
        dependencies: sorted URNs the resource depends on.
        inputs: property map, camelCase, secrets as ``"[secret]"``, integral floats as ints.
    """

    urn: str
    type: str
    name: str
    parent: Optional[str]
    provider: Optional[str]
    protect: bool
    custom: bool
    dependencies: tuple[str, ...]
    inputs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The preview-JSON shape: urn, type, name, parent, provider, protect, dependencies, inputs."""
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "protect": self.protect,
            "dependencies": list(self.dependencies),
            "inputs": self.inputs,
        }


@dataclass
class Capture:
    """The result of one mock run.

    Attributes:
        stack: stack name.
        registrations: every registered resource in registration order (the stack first).
        outputs: resolved stack outputs, secrets as ``"[secret]"`` (empty when ``error`` is set).
        error: the exception that stopped the program (e.g. a ConfigError), else None.
        platform: the ``infra.program.Platform`` built (None on error).
    """

    stack: str
    registrations: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    error: Optional[BaseException] = None
    platform: Any = None

    @property
    def resources(self) -> list[Registration]:
        """Registrations other than the root stack, sorted by URN."""
        return sorted((r for r in self.registrations if r.type != STACK_TYPE), key=lambda r: r.urn)

    def of_type(self, type_token: str) -> list[Registration]:
        """Registrations of one type token, sorted by URN."""
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: Optional[str] = None) -> Registration:
        """The single registration of ``type_token`` (and ``name``); raises AssertionError otherwise."""
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_token} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def by_urn(self, urn: str) -> Registration:
        """The registration with this URN (KeyError if none)."""
        for r in self.registrations:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def as_document(self) -> dict[str, Any]:
        """The offline preview JSON document (docs/seams.md): stack, resources (by URN), outputs."""
        return {
            "stack": self.stack,
            "resources": [
                r.as_json() for r in sorted(self.registrations, key=lambda r: r.urn)
            ],
            "outputs": self.outputs,
        }


# --------------------------------------------------------------------------- value conversion


def _normalise(value: Any) -> Any:
    """Turn a wire property value (``MessageToDict`` form) into plain JSON for the preview."""
    if isinstance(value, dict):
        sig = value.get(rpc._special_sig_key)
        if sig == rpc._special_secret_sig:
            return SECRET_PLACEHOLDER
        if sig == rpc._special_resource_sig:
            return value.get("urn")
        if sig == rpc._special_output_value_sig:
            if value.get("secret"):
                return SECRET_PLACEHOLDER
            return _normalise(value["value"]) if "value" in value else UNKNOWN_PLACEHOLDER
        if sig == rpc._special_asset_sig:
            return {"asset": value.get("path") or value.get("uri") or "text"}
        if sig == rpc._special_archive_sig:
            return {"archive": value.get("path") or value.get("uri") or "assets"}
        return {k: _normalise(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == rpc.UNKNOWN:
        return UNKNOWN_PLACEHOLDER
    return value


# --------------------------------------------------------------------------- mocks


def project_number(project: str) -> str:
    """The mock's deterministic 12-digit stand-in for ``project``'s number (``getProject``'s ``number``).

    Offline tools that need a project number without running the program
    (``tools/render.py --source settings``) use the same one, so their output
    matches the preview's.
    """
    return str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % 10**12).rjust(12, "1")


_project_number = project_number


def _fake_ip(seed: str, network: str) -> str:
    net = ipaddress.IPv4Network(network)
    offset = 2 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % max(1, net.num_addresses - 4)
    return str(net.network_address + offset)


def _mock_number(seed: str) -> int:
    """A deterministic 15-digit number for server-assigned ids (channels, policies, checks)."""
    return 10**14 + int(hashlib.sha256(seed.encode()).hexdigest(), 16) % (9 * 10**14)


class PlatformMocks(pulumi.runtime.Mocks):
    """Mock provider: echoes inputs and adds the outputs GCP would compute, deterministically.

    Args:
        project: default project id (``gcp:project``). region: default region.
        private_service_access_cidr: range the mock Cloud SQL private IP is taken from.
    """

    def __init__(self, project: str, region: str, private_service_access_cidr: str = "10.255.0.0/20") -> None:
        self.project = project
        self.region = region
        self.psa_cidr = private_service_access_cidr
        self.number = _project_number(project)

    # pylint: disable=too-many-return-statements
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        """Return ``(id, state)`` for a resource registration (state keys camelCase)."""
        inputs = dict(args.inputs)
        project = inputs.get("project", self.project)
        region = inputs.get("region", inputs.get("location", self.region))
        name = inputs.get("name", args.name)
        state = {**inputs, "project": project} if args.typ.startswith("gcp:") else dict(inputs)
        t = args.typ
        if t == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}",
                         name=f"projects/{project}/serviceAccounts/{email}",
                         uniqueId=str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21))
            return state["name"], state
        if t == "gcp:container/cluster:Cluster":
            ca = base64.b64encode(f"-----BEGIN CERTIFICATE-----\nMOCK-{name}\n-----END CERTIFICATE-----\n".encode()).decode()
            state.update(
                endpoint=_fake_ip(name, "34.0.0.0/8"),
                masterAuth={"clusterCaCertificate": ca, "clientCertificateConfig": {"issueClientCertificate": False}},
                workloadIdentityConfig=inputs.get("workloadIdentityConfig") or {"workloadPool": f"{project}.svc.id.goog"},
                controlPlaneEndpointsConfig={
                    "dnsEndpointConfig": {
                        **((inputs.get("controlPlaneEndpointsConfig") or {}).get("dnsEndpointConfig") or {}),
                        "endpoint": f"gke-{hashlib.sha256(name.encode()).hexdigest()[:32]}-{self.number}.{region}.gke.goog",
                    },
                    "ipEndpointsConfig": {"enabled": True},
                },
                selfLink=f"https://container.googleapis.com/v1/projects/{project}/locations/{region}/clusters/{name}",
            )
            return f"projects/{project}/locations/{region}/clusters/{name}", state
        if t == "gcp:sql/databaseInstance:DatabaseInstance":
            state.update(
                connectionName=f"{project}:{region}:{name}",
                privateIpAddress=_fake_ip(name, self.psa_cidr),
                serviceAccountEmailAddress=f"p{self.number}-mock@gcp-sa-cloud-sql.iam.gserviceaccount.com",
                selfLink=f"https://sqladmin.googleapis.com/sql/v1beta4/projects/{project}/instances/{name}",
            )
            return name, state
        if t == "gcp:storage/bucket:Bucket":
            state.update(url=f"gs://{name}", selfLink=f"https://www.googleapis.com/storage/v1/b/{name}")
            return name, state
        if t == "gcp:pubsub/topic:Topic":
            return f"projects/{project}/topics/{name}", state
        if t == "gcp:pubsub/subscription:Subscription":
            return f"projects/{project}/subscriptions/{name}", state
        if t == "gcp:compute/network:Network":
            state.update(selfLink=f"https://www.googleapis.com/compute/v1/projects/{project}/global/networks/{name}")
            return f"projects/{project}/global/networks/{name}", state
        if t == "gcp:compute/subnetwork:Subnetwork":
            rid = f"projects/{project}/regions/{region}/subnetworks/{name}"
            state.update(selfLink=f"https://www.googleapis.com/compute/v1/{rid}")
            return rid, state
        if t == "gcp:compute/globalAddress:GlobalAddress":
            state.setdefault("address", _fake_ip(name, "34.0.0.0/8"))
            return f"projects/{project}/global/addresses/{name}", state
        if t == "gcp:projects/serviceIdentity:ServiceIdentity":
            service = inputs["service"].split(".")[0]
            email = f"service-{self.number}@gcp-sa-{service}.iam.gserviceaccount.com"
            state.update(email=email, member=f"serviceAccount:{email}")
            return f"projects/{project}/services/{inputs['service']}", state
        if t == "gcp:artifactregistry/repository:Repository":
            state.update(name=inputs.get("repositoryId"), location=region)
            return f"projects/{project}/locations/{region}/repositories/{inputs.get('repositoryId')}", state
        # Edge + alerting (infra/loadbalancer.py, infra/monitoring.py): the ids/names other
        # resources reference (cert map entry -> certificate id, policies -> channel names,
        # uptime alert filter -> uptimeCheckId).
        if t == "gcp:certificatemanager/certificate:Certificate":
            return f"projects/{project}/locations/global/certificates/{name}", state
        if t == "gcp:monitoring/notificationChannel:NotificationChannel":
            state["name"] = f"projects/{project}/notificationChannels/{_mock_number(args.name)}"
            return state["name"], state
        if t == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            check_id = f"{args.name}-{_mock_number(inputs.get('displayName', args.name)) % 10**6:06d}"
            state.update(uptimeCheckId=check_id, name=f"projects/{project}/uptimeCheckConfigs/{check_id}")
            return state["name"], state
        if t == "gcp:monitoring/alertPolicy:AlertPolicy":
            state["name"] = f"projects/{project}/alertPolicies/{_mock_number(args.name)}"
            return state["name"], state
        if t in UNKNOWN_OUTPUT_TYPES:
            # Inputs only; the outputs are resolved as unknown (RecordingMonitor sets `unknown`).
            return f"{args.name}-not-built", dict(inputs)
        if t == "gcp:iap/webTypeComputeIamMember:WebTypeComputeIamMember":
            state["etag"] = "BwMock="
            return f"projects/{project}/iap_web/compute {inputs.get('role')} {inputs.get('member')}", state
        if t.startswith("kubernetes:") and "metadata" in inputs:
            meta = dict(inputs.get("metadata") or {})
            meta.setdefault("name", f"{args.name}-mock")
            state["metadata"] = meta
            return f"{meta.get('namespace', '')}/{meta['name']}".lstrip("/"), state
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, Optional[list]]:
        """Return results of provider functions (invokes) the program uses."""
        project = args.args.get("project") or args.args.get("projectId") or self.project
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            email = f"service-{self.number}@gs-project-accounts.iam.gserviceaccount.com"
            return {"emailAddress": email, "member": f"serviceAccount:{email}", "project": project, "id": email}, []
        if args.token == "gcp:organizations/getProject:getProject":
            return {"number": self.number, "projectId": project, "name": project, "id": f"projects/{project}"}, []
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": project, "region": self.region, "accessToken": "mock-token", "id": "mock"}, []
        return {}, []


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A ``MockMonitor`` that also records every ``RegisterResource`` request (see :class:`Registration`)."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type in UNKNOWN_OUTPUT_TYPES:
            # "SDKs should resolve outputs as unknown" (RegisterResourceResponse.unknown).
            response.unknown = True
        inputs = _normalise(json_format.MessageToDict(request.object, preserving_proto_field_name=True))
        self.registrations.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                provider=request.provider or None,
                protect=bool(request.protect),
                custom=bool(request.custom),
                dependencies=tuple(sorted(set(request.dependencies))),
                inputs=inputs,
            )
        )
        return response


# --------------------------------------------------------------------------- running


def engine_config(config: dict[str, Any]) -> dict[str, str]:
    """Encode stack-file values as the engine passes them: strings as-is, everything else JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


async def _resolve(value: Any) -> Any:
    if isinstance(value, dict):  # per key: one unknown entry must not hide the known ones
        return {k: await _resolve(v) for k, v in sorted(value.items())}
    output = pulumi.Output.from_input(value)
    if await output.is_secret():
        return SECRET_PLACEHOLDER
    if not await output.is_known():
        return UNKNOWN_PLACEHOLDER
    resolved = await output.future()
    if isinstance(resolved, dict):
        return {k: await _resolve(v) for k, v in sorted(resolved.items())}
    if isinstance(resolved, list):
        return [await _resolve(v) for v in resolved]
    return resolved


def run_stack(
    stack: str,
    root: Optional[Path] = None,
    config_override: Optional[dict[str, Any]] = None,
) -> Capture:
    """Run ``infra.program`` for ``stack`` under the mock runtime and capture it.

    Args:
        stack: stack name; ``<root>/Pulumi.<stack>.yaml`` is read.
        root: repository root holding the stack file and ``environments/`` (default: this checkout).
        config_override: replaces the stack file's config mapping entirely (tests of bad
            config); full keys, stack-file value shapes.

    Returns:
        A :class:`Capture`. A program error (e.g. ``ConfigError``) is returned in
        ``Capture.error`` together with whatever was registered before it.
    """
    from infra import program  # imported here so a broken component surfaces as an error of the run

    if config_override is not None:
        config, secret_keys = dict(config_override), []
    else:
        try:
            config, secret_keys = read_stack_file(stack, root)
        except ConfigError as exc:
            return Capture(stack=stack, error=exc)
    project = str(config.get("gcp:project", "mock-project"))
    region = str(config.get("gcp:region", "europe-west1"))
    network = config.get("print-platform:network")
    psa = network.get("privateServiceAccessCidr") if isinstance(network, dict) else None
    try:
        ipaddress.IPv4Network(psa)
    except (TypeError, ValueError):
        psa = "10.255.0.0/20"

    return run_under_mocks(PROJECT, stack, PlatformMocks(project, region, psa), config, secret_keys,
                           lambda: program.run(root=root))


def run_under_mocks(pulumi_project: str, stack: str, mocks: pulumi.runtime.Mocks, config: dict[str, Any],
                    secret_keys: list[str], run: Any) -> Capture:
    """Run ``run()`` (a Pulumi program's entry point returning an object with ``outputs``) under
    ``mocks`` as stack ``stack`` of Pulumi project ``pulumi_project`` (it names the URNs), with
    ``config`` as the stack's engine config, recording every registration.

    One run at a time in the process (the Pulumi runtime's settings are global). A program error
    is returned in ``Capture.error`` with whatever was registered before it.
    """
    capture = Capture(stack=stack)
    with _RUN_LOCK:
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_all_config(engine_config(config), secret_keys)
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=pulumi_project, stack=stack, preview=False, monitor=monitor)

        async def _program() -> None:
            result = run()
            capture.platform = result
            capture.outputs = {name: await _resolve(value) for name, value in sorted(result.outputs.items())}

        try:
            _sync_await(run_pulumi_func(_program))
        except Exception as exc:  # noqa: BLE001 - reported to the caller in Capture.error
            capture.error = exc
            capture.outputs = {}
        finally:
            runtime_settings.ROOT.set(None)
        capture.registrations = list(monitor.registrations)
    return capture
