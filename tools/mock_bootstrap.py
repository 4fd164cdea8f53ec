"""Run the bootstrap program (``infra/bootstrap``) under Pulumi's mock runtime and capture it.

The same machinery as :mod:`tools.mock_runtime` (recording monitor, stack-file config as
the engine passes it, outputs resolved, secrets masked) with mocks for the resource types
only the bootstrap creates (workload identity pool and provider, KMS key ring and keys,
custom roles). Used by ``make preview STACK=bootstrap`` and ``tests/bootstrap/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.bootstrap.settings import PROJECT, STACK, read_bootstrap_file
from infra.settings import ConfigError
from tools.mock_runtime import _RUN_LOCK, Capture, PlatformMocks, RecordingMonitor, _resolve, engine_config


class BootstrapMocks(PlatformMocks):
    """:class:`tools.mock_runtime.PlatformMocks` plus the bootstrap's resource types (ids as GCP forms them)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        inputs = dict(args.inputs)
        project = inputs.get("project", self.project)
        t = args.typ
        if t == "gcp:iam/workloadIdentityPool:WorkloadIdentityPool":
            name = f"projects/{self.number}/locations/global/workloadIdentityPools/{inputs['workloadIdentityPoolId']}"
            return name, {**inputs, "project": project, "name": name, "state": "ACTIVE"}
        if t == "gcp:iam/workloadIdentityPoolProvider:WorkloadIdentityPoolProvider":
            name = (f"projects/{self.number}/locations/global/workloadIdentityPools/"
                    f"{inputs['workloadIdentityPoolId']}/providers/{inputs['workloadIdentityPoolProviderId']}")
            return name, {**inputs, "project": project, "name": name, "state": "ACTIVE"}
        if t == "gcp:kms/keyRing:KeyRing":
            rid = f"projects/{project}/locations/{inputs['location']}/keyRings/{inputs['name']}"
            return rid, {**inputs, "project": project}
        if t == "gcp:kms/cryptoKey:CryptoKey":
            rid = f"{inputs['keyRing']}/cryptoKeys/{inputs['name']}"
            return rid, dict(inputs)
        if t == "gcp:projects/iAMCustomRole:IAMCustomRole":
            name = f"projects/{project}/roles/{inputs['roleId']}"
            return name, {**inputs, "project": project, "name": name}
        return super().new_resource(args)


def run_bootstrap_stack(
    stack: str = STACK,
    root: Optional[Path] = None,
    config_override: Optional[dict[str, Any]] = None,
) -> Capture:
    """Run ``infra.bootstrap.program`` for ``infra/bootstrap/Pulumi.<stack>.yaml`` under the mock runtime.

    Args:
        stack: bootstrap stack name. root: repository root (default: this checkout).
        config_override: replaces the stack file's config mapping entirely (bad-config tests).

    Returns:
        A :class:`tools.mock_runtime.Capture` (``platform`` is the ``Bootstrap``); a program
        error such as a ``ConfigError`` is in ``Capture.error`` with what was registered before it.
    """
    from infra.bootstrap import program

    if config_override is not None:
        config, secret_keys = dict(config_override), []
    else:
        try:
            config, secret_keys = read_bootstrap_file(stack, root)
        except ConfigError as exc:
            return Capture(stack=stack, error=exc)
    project = str(config.get("gcp:project", "mock-seed-project"))
    region = str(config.get("gcp:region", "europe-west1"))

    capture = Capture(stack=stack)
    with _RUN_LOCK:
        mocks = BootstrapMocks(project, region)
        monitor = RecordingMonitor(mocks)
        pulumi.runtime.set_all_config(engine_config(config), secret_keys)
        runtime_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)

        async def _program() -> None:
            result = program.run(root=root)
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
