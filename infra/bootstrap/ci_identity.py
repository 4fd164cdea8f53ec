"""Per platform stack: the deploy and the preview service account of CI, and what they may do.

Both accounts live in the seed project (they outlive the stack's project resources and
are managed in one place) and are impersonable only through workload identity
federation (``roles/iam.workloadIdentityUser`` for one federated subject; no keys):

- **deploy** (``<stack>-deploy``): the GitHub environment of the stack on its deploy refs.
  On the stack's project, exactly :func:`infra.apis.deploy_roles` of the stack's APIs;
  read/write of the stack's state prefix; encrypt/decrypt with the stack's key.
- **preview** (``<stack>-preview``): pull-request runs of the repository. On the stack's
  project, :func:`infra.apis.preview_roles` (read-only) plus a custom role with
  :data:`PREVIEW_READER_PERMISSIONS` (the cluster's DNS endpoint and the Helm release
  records, Kubernetes Secrets, that ``pulumi preview --refresh`` reads);
  read of the stack's state prefix; decrypt with the stack's key.

Sources: https://cloud.google.com/storage/docs/access-control/iam#conditions (object name
conditions ``resource.name.startsWith('projects/_/buckets/<b>/objects/<prefix>')``),
https://cloud.google.com/kms/docs/reference/permissions-and-roles,
https://helm.sh/docs/topics/advanced/#storage-backends (release records are Secrets).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_gcp as gcp

#: Impersonation through workload identity federation.
WORKLOAD_IDENTITY_USER = "roles/iam.workloadIdentityUser"
#: Roles on the state bucket: object read/write limited to the stack's prefix by a
#: condition, plus listing the bucket (a list is checked on the bucket, not the objects).
DEPLOY_STATE_ROLE = "roles/storage.objectUser"
PREVIEW_STATE_ROLE = "roles/storage.objectViewer"
STATE_LIST_ROLE = "roles/storage.legacyBucketReader"
#: Roles on the stack's secrets key.
DEPLOY_KEY_ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
PREVIEW_KEY_ROLE = "roles/cloudkms.cryptoKeyDecrypter"
#: What the preview needs beyond the predefined viewer roles: reaching the cluster's
#: IAM-authorised DNS endpoint (checked on container.clusters.connect) and reading Helm v3's
#: release records, which Helm stores as Kubernetes Secrets (container.viewer excludes them).
PREVIEW_READER_PERMISSIONS = ("container.clusters.connect", "container.secrets.get", "container.secrets.list")


def _short(role: str) -> str:
    return role.split("/")[-1].replace(".", "-").lower()


def state_condition(bucket: str, stack: str) -> str:
    """IAM condition: objects under ``<stack>/`` of ``bucket`` only."""
    return f"resource.name.startsWith('projects/_/buckets/{bucket}/objects/{stack}/')"


@dataclass(frozen=True)
class CiIdentityArgs:
    """Inputs of :class:`CiIdentity`.

    Attributes:
        seed_project: where the accounts live. stack: platform stack name.
        stack_project: the platform stack's project (where the roles are granted).
        deploy_account_id, preview_account_id: service account ids.
        deploy_roles, preview_roles: project roles (from :mod:`infra.apis`).
        preview_role_id: id of the custom preview reader role in the stack project.
        deploy_principal, preview_principal: the federated ``principal://`` members.
        state_bucket: the state bucket's name (Output of the bucket, so grants wait for it).
        state_bucket_name: the same name as a plain string (for the IAM condition).
        key_id: the stack's KMS key id.
    """

    seed_project: str
    stack: str
    stack_project: str
    deploy_account_id: str
    preview_account_id: str
    deploy_roles: Sequence[str]
    preview_roles: Sequence[str]
    preview_role_id: str
    deploy_principal: pulumi.Input[str]
    preview_principal: pulumi.Input[str]
    state_bucket: pulumi.Input[str]
    state_bucket_name: str
    key_id: pulumi.Input[str]


class CiIdentity(pulumi.ComponentResource):
    """The deploy and preview service accounts of one platform stack and their grants.

    Attributes:
        deploy, preview: the ``serviceaccount.Account`` resources.
        deploy_email, preview_email: their e-mails (Output[str]).
    """

    def __init__(self, name: str, args: CiIdentityArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform-bootstrap:ci:CiIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.stack
        self.deploy = gcp.serviceaccount.Account(
            f"{s}-deploy", project=args.seed_project, account_id=args.deploy_account_id,
            display_name=f"CI deploy of stack {s}",
            description=f"pulumi up of stack {s} from its GitHub environment (workload identity federation only)",
            opts=child,
        )
        self.preview = gcp.serviceaccount.Account(
            f"{s}-preview", project=args.seed_project, account_id=args.preview_account_id,
            display_name=f"CI preview of stack {s}",
            description=f"read-only pulumi preview of stack {s} for pull requests (workload identity federation only)",
            opts=child,
        )
        self.deploy_email = self.deploy.email
        self.preview_email = self.preview.email

        # Who may act as each account: one federated subject each, nothing else.
        gcp.serviceaccount.IAMMember(f"{s}-deploy-federated", service_account_id=self.deploy.name,
                                     role=WORKLOAD_IDENTITY_USER, member=args.deploy_principal, opts=child)
        gcp.serviceaccount.IAMMember(f"{s}-preview-federated", service_account_id=self.preview.name,
                                     role=WORKLOAD_IDENTITY_USER, member=args.preview_principal, opts=child)

        # What they may do on the stack's project.
        for role in args.deploy_roles:
            gcp.projects.IAMMember(f"{s}-deploy-{_short(role)}", project=args.stack_project, role=role,
                                   member=self.deploy.member, opts=child)
        for role in args.preview_roles:
            gcp.projects.IAMMember(f"{s}-preview-{_short(role)}", project=args.stack_project, role=role,
                                   member=self.preview.member, opts=child)
        self.preview_reader = gcp.projects.IAMCustomRole(
            f"{s}-preview-reader",
            project=args.stack_project,
            role_id=args.preview_role_id,
            title="Pulumi preview: cluster and Helm records",
            description="Connect to the cluster's DNS endpoint and read the Helm v3 release records "
                        "(Kubernetes Secrets) that pulumi preview --refresh reads.",
            permissions=list(PREVIEW_READER_PERMISSIONS),
            stage="GA",
            opts=child,
        )
        gcp.projects.IAMMember(f"{s}-preview-reader", project=args.stack_project,
                               role=self.preview_reader.name, member=self.preview.member, opts=child)

        # The stack's state (its prefix only) and secrets key.
        condition = gcp.storage.BucketIAMMemberConditionArgs(
            title=f"state of stack {s} only", expression=state_condition(args.state_bucket_name, s)
        )
        gcp.storage.BucketIAMMember(f"{s}-deploy-state", bucket=args.state_bucket, role=DEPLOY_STATE_ROLE,
                                    member=self.deploy.member, condition=condition, opts=child)
        gcp.storage.BucketIAMMember(f"{s}-preview-state", bucket=args.state_bucket, role=PREVIEW_STATE_ROLE,
                                    member=self.preview.member, condition=condition, opts=child)
        for who, account in (("deploy", self.deploy), ("preview", self.preview)):
            gcp.storage.BucketIAMMember(f"{s}-{who}-state-list", bucket=args.state_bucket, role=STATE_LIST_ROLE,
                                        member=account.member, opts=child)
        gcp.kms.CryptoKeyIAMMember(f"{s}-deploy-secrets", crypto_key_id=args.key_id, role=DEPLOY_KEY_ROLE,
                                   member=self.deploy.member, opts=child)
        gcp.kms.CryptoKeyIAMMember(f"{s}-preview-secrets", crypto_key_id=args.key_id, role=PREVIEW_KEY_ROLE,
                                   member=self.preview.member, opts=child)
        self.register_outputs({"deploy": self.deploy_email, "preview": self.preview_email})
