"""Shared helpers of the policy pack tests: fake analyzer calls built from real pulumi_policy types."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Optional

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationArgs, ResourceValidationPolicy
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions

POLICY_DIR = Path(__file__).resolve().parents[1]
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

import gcp_platform_policies as pack  # noqa: E402


def make_args(resource_type: str, props: Mapping[str, Any], *, name: str = "res", stack: str = "prod",
              protect: bool = False, config: Optional[Mapping[str, Any]] = None,
              urn: Optional[str] = None) -> ResourceValidationArgs:
    """A ``ResourceValidationArgs`` as the analyzer builds it (props camelCase, as the engine sends them)."""
    urn = urn or f"urn:pulumi:{stack}::print-platform::{resource_type}::{name}"
    opts = PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return ResourceValidationArgs(resource_type, props, urn, name, opts, None, config)


def run_policy(policy: ResourceValidationPolicy, args: ResourceValidationArgs) -> list[str]:
    """Messages the policy reports on ``args`` (through the policy object's own ``validate``)."""
    messages: list[str] = []

    def report(message: str, urn: Optional[str] = None) -> None:
        messages.append(message)

    policy.validate(args, report)
    return messages


def policy_named(name: str) -> ResourceValidationPolicy:
    for policy in pack.POLICIES:
        if policy.name == name:
            return policy
    raise KeyError(name)


def is_mandatory(policy: ResourceValidationPolicy) -> bool:
    return policy.enforcement_level == EnforcementLevel.MANDATORY


@pytest.fixture
def policies() -> list[ResourceValidationPolicy]:
    return list(pack.POLICIES)
