"""GitHub Actions -> Google Cloud without keys: a workload identity pool and its OIDC provider.

The provider accepts a GitHub OIDC token only if its ``attribute_condition`` holds:
the token comes from the one configured repository, and either from a pull-request run
(``sub`` ``repo:<owner>/<repo>:pull_request``) or from a job in the GitHub environment of
a platform stack on one of that stack's deploy refs (``sub``
``repo:<owner>/<repo>:environment:<stack>`` and ``ref``). Service accounts then admit a
single subject each (``principal://.../subject/<sub>``), see ``ci_identity.py``.

Sources: https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
(claims ``sub``, ``repository``, ``ref``, ``environment``; issuer
``https://token.actions.githubusercontent.com``),
https://cloud.google.com/iam/docs/workload-identity-federation-with-deployment-pipelines#github-actions
(attribute mapping and condition), https://github.com/google-github-actions/auth#preferred-direct-workload-identity-federation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_gcp as gcp

#: GitHub Actions' OIDC token issuer.
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
#: Token claims copied to attributes (google.subject is what principals match on).
ATTRIBUTE_MAPPING: Mapping[str, str] = {
    "google.subject": "assertion.sub",
    "attribute.repository": "assertion.repository",
    "attribute.ref": "assertion.ref",
    "attribute.event_name": "assertion.event_name",
}


def _quote(value: str) -> str:
    """A CEL string literal (the values are validated, this only guards quotes and backslashes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pull_request_subject(repository: str) -> str:
    """``sub`` of a pull-request run of ``repository`` (GitHub's default subject format)."""
    return f"repo:{repository}:pull_request"


def environment_subject(repository: str, environment: str) -> str:
    """``sub`` of a job of ``repository`` running in GitHub environment ``environment``."""
    return f"repo:{repository}:environment:{environment}"


def _ref_matches(ref: str) -> str:
    if ref.endswith("*"):
        return f"assertion.ref.startsWith({_quote(ref[:-1])})"
    return f"assertion.ref == {_quote(ref)}"


def attribute_condition(repository: str, deploy_refs: Mapping[str, Sequence[str]]) -> str:
    """The provider's CEL condition.

    Args:
        repository: ``owner/name`` (validated by the bootstrap settings).
        deploy_refs: ``{environment (= stack): [ref or ref prefix ending in '*']}``.

    Returns:
        ``assertion.repository == '<repo>' && (<pull request> || <env 1 on its refs> || ...)``.
    """
    branches = [f"assertion.sub == {_quote(pull_request_subject(repository))}"]
    for environment, refs in sorted(deploy_refs.items()):
        on_refs = " || ".join(_ref_matches(r) for r in refs)
        branches.append(
            f"(assertion.sub == {_quote(environment_subject(repository, environment))} && ({on_refs}))"
        )
    return f"assertion.repository == {_quote(repository)} && ({' || '.join(branches)})"


@dataclass(frozen=True)
class GithubFederationArgs:
    """Inputs of :class:`GithubFederation`.

    Attributes:
        project: the seed project. pool_id, provider_id: ids (4-32 chars).
        repository: ``owner/name``. deploy_refs: ``{stack: refs}`` (see :func:`attribute_condition`).
    """

    project: str
    pool_id: str
    provider_id: str
    repository: str
    deploy_refs: Mapping[str, Sequence[str]]


class GithubFederation(pulumi.ComponentResource):
    """Workload identity pool + GitHub OIDC provider (protected: a deleted pool id stays
    reserved for 30 days, and every CI run depends on it).

    Attributes:
        pool, provider: the resources. provider_name: ``projects/<number>/locations/global/
            workloadIdentityPools/<pool>/providers/<provider>`` (Output[str]), what
            ``google-github-actions/auth`` takes as ``workload_identity_provider``.
        pull_request_principal, environment_principals: ``principal://`` members
            (Output[str]) for ``roles/iam.workloadIdentityUser`` grants.
    """

    def __init__(self, name: str, args: GithubFederationArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform-bootstrap:federation:GithubFederation", name, None, opts)
        kept = pulumi.ResourceOptions(parent=self, protect=True)
        self.pool = gcp.iam.WorkloadIdentityPool(
            "github",
            project=args.project,
            workload_identity_pool_id=args.pool_id,
            display_name="GitHub Actions",
            description=f"OIDC tokens of the workflows of {args.repository}",
            opts=kept,
        )
        self.condition = attribute_condition(args.repository, args.deploy_refs)
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            "github",
            project=args.project,
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name="GitHub OIDC",
            description=f"{args.repository}: pull requests, and deployments per environment and ref",
            attribute_mapping=dict(ATTRIBUTE_MAPPING),
            # Why a condition (required by Google for GitHub providers since 2023): without
            # it, any repository on github.com could exchange its tokens in this pool.
            attribute_condition=self.condition,
            # No allowed_audiences: the default audience is this provider's resource name,
            # which is what google-github-actions/auth requests.
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ISSUER),
            opts=kept,
        )
        self.provider_name = self.provider.name
        self.pull_request_principal = self.principal(pull_request_subject(args.repository))
        self.environment_principals = {
            env: self.principal(environment_subject(args.repository, env)) for env in sorted(args.deploy_refs)
        }
        self.register_outputs({"provider_name": self.provider_name})

    def principal(self, subject: str) -> pulumi.Output[str]:
        """``principal://iam.googleapis.com/<pool name>/subject/<subject>`` (one federated identity)."""
        return pulumi.Output.concat("principal://iam.googleapis.com/", self.pool.name, "/subject/", subject)
