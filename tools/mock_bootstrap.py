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

from infra.bootstrap.settings import PROJECT, STACK, read_bootstrap_file
from infra.settings import ConfigError
from tools.mock_runtime import Capture, PlatformMocks, run_under_mocks


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

    return run_under_mocks(PROJECT, stack, BootstrapMocks(project, region), config, secret_keys,
                           lambda: program.run(root=root))
