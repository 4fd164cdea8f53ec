"""Entry point the Pulumi CLI runs for ``--policy-pack policy`` (PulumiPolicy.yaml).

The policies live in ``gcp_platform_policies``, importable without starting the
analyzer's gRPC server (``PolicyPack(...)`` blocks serving), so the tests can exercise them.
"""
from pulumi_policy import EnforcementLevel, PolicyPack

from gcp_platform_policies import POLICIES

PolicyPack(
    name="print-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
    description="Security and safety invariants of the print-platform GCP stacks (docs/policy.md).",
)
