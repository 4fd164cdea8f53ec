"""Service identities of the services: one Google service account per service, its
Workload Identity binding, and least-privilege grants scoped to the resources it uses.

Two components, because the database needs the accounts (IAM database users) and the
grants need the database (instance-scoped condition):

- :class:`ServiceAccounts`: the accounts and the Workload Identity bindings. The binding's
  member is built from the cluster's ``workload_pool`` output, so it waits for the cluster.
- :class:`ServiceAccess`: the grants, on the bucket / subscription where those APIs have
  resource-level IAM, and on the project with an IAM condition naming the Cloud SQL
  instance where they do not.

No service account keys are created anywhere; no basic roles (owner/editor/viewer).

Sources: https://cloud.google.com/kubernetes-engine/docs/how-to/workload-identity,
https://cloud.google.com/storage/docs/access-control/iam-roles,
https://cloud.google.com/pubsub/docs/access-control,
https://cloud.google.com/sql/docs/postgres/iam-roles,
https://cloud.google.com/sql/docs/postgres/iam-conditions (resource.name condition on instances).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_gcp as gcp

#: Roles per service on the uploads bucket.
BUCKET_ROLES: Mapping[str, Sequence[str]] = {
    # create, read, list and delete upload objects; no bucket or IAM admin. legacyBucketReader:
    # storage.buckets.get, to read the bucket's notification configurations for /readyz
    # (files_api.notifications); it adds only bucket metadata (objects.list is in objectUser).
    "files-api": ("roles/storage.objectUser", "roles/storage.legacyBucketReader"),
    # read the uploaded generation only.
    "extractor": ("roles/storage.objectViewer",),
}
#: Roles per service on the uploads bucket (continued): the reconciler reads an object's
#: metadata (the resource of the notification it republishes).
BUCKET_ROLES = {**BUCKET_ROLES, "reconciler": ("roles/storage.objectViewer",)}
#: Roles per service on the extractor subscription.
SUBSCRIPTION_ROLES: Mapping[str, Sequence[str]] = {
    "files-api": (),
    "extractor": ("roles/pubsub.subscriber",),
    "reconciler": (),
}
#: Roles on the uploads topic: the reconciler republishes lost notifications there.
TOPIC_ROLES: Mapping[str, Sequence[str]] = {"reconciler": ("roles/pubsub.publisher",)}
#: Roles on the dead-letter subscription: the reconciler re-drives (pulls and acks) it on request.
DEAD_LETTER_SUBSCRIPTION_ROLES: Mapping[str, Sequence[str]] = {"reconciler": ("roles/pubsub.subscriber",)}
#: Cloud SQL roles (project-level API; scoped to the instance by an IAM condition):
#: client = connect through the Cloud SQL Auth Proxy, instanceUser = IAM database login.
SQL_ROLES: Sequence[str] = ("roles/cloudsql.client", "roles/cloudsql.instanceUser")
#: Roles a service account must never hold (basic roles).
FORBIDDEN_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})


def _short(role: str) -> str:
    return role.split("/")[-1]


@dataclass(frozen=True)
class ServiceAccountsArgs:
    """Inputs of :class:`ServiceAccounts`.

    Attributes:
        project: project id.
        account_ids: ``{service: account id}`` (``infra.settings.Names.service_accounts``).
        kubernetes_service_accounts: ``{service: Kubernetes ServiceAccount name}``.
        namespace: namespace of those Kubernetes service accounts.
        workload_pool: the cluster's workload pool output (``<project>.svc.id.goog``).
    """

    project: str
    account_ids: Mapping[str, str]
    kubernetes_service_accounts: Mapping[str, str]
    namespace: pulumi.Input[str]
    workload_pool: pulumi.Input[str]

    def __post_init__(self) -> None:
        if set(self.account_ids) != set(self.kubernetes_service_accounts):
            raise ValueError("iam: account_ids and kubernetes_service_accounts must name the same services")


class ServiceAccounts(pulumi.ComponentResource):
    """One Google service account per service and its Workload Identity binding.

    Attributes:
        accounts: ``{service: serviceaccount.Account}``.
        emails: ``{service: Output[str]}`` e-mail of each account.
        members: ``{service: Output[str]}`` ``serviceAccount:<email>``.
        workload_identity_bindings: ``{service: serviceaccount.IAMMember}``.
    """

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:iam:ServiceAccounts", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.accounts: dict[str, gcp.serviceaccount.Account] = {}
        self.emails: dict[str, pulumi.Output[str]] = {}
        self.members: dict[str, pulumi.Output[str]] = {}
        self.workload_identity_bindings: dict[str, gcp.serviceaccount.IAMMember] = {}
        for service, account_id in sorted(args.account_ids.items()):
            account = gcp.serviceaccount.Account(
                service,
                account_id=account_id,
                project=args.project,
                display_name=f"{service} (print-platform)",
                description=f"Workload identity of the {service} pods; no keys.",
                opts=child,
            )
            self.accounts[service] = account
            self.emails[service] = account.email
            self.members[service] = pulumi.Output.concat("serviceAccount:", account.email)
            ksa = args.kubernetes_service_accounts[service]
            # Why the pool output (not the literal "<project>.svc.id.goog"): the pool
            # exists only once the cluster does; the binding must wait for it.
            member = pulumi.Output.all(args.workload_pool, args.namespace).apply(
                lambda parts, ksa=ksa: f"serviceAccount:{parts[0]}[{parts[1]}/{ksa}]"
            )
            self.workload_identity_bindings[service] = gcp.serviceaccount.IAMMember(
                f"{service}-workload-identity",
                service_account_id=account.name,
                role="roles/iam.workloadIdentityUser",
                member=member,
                opts=child,
            )
        self.register_outputs({"emails": self.emails})


@dataclass(frozen=True)
class ServiceAccessArgs:
    """Inputs of :class:`ServiceAccess`.

    Attributes:
        project: project id.
        members: ``{service: "serviceAccount:<email>"}`` (from :class:`ServiceAccounts`).
        bucket_name: uploads bucket. subscription_name: extractor subscription (short id).
        sql_instance_name: Cloud SQL instance name (the IAM condition's scope).
        uploads_topic_name: uploads topic (short id) for ``TOPIC_ROLES``;
        dead_letter_subscription_name: dead-letter subscription (short id) for
            ``DEAD_LETTER_SUBSCRIPTION_ROLES``; None grants nothing there.
    """

    project: str
    members: Mapping[str, pulumi.Input[str]]
    bucket_name: pulumi.Input[str]
    subscription_name: pulumi.Input[str]
    sql_instance_name: pulumi.Input[str]
    uploads_topic_name: Optional[pulumi.Input[str]] = None
    dead_letter_subscription_name: Optional[pulumi.Input[str]] = None

    def __post_init__(self) -> None:
        for table in (BUCKET_ROLES, SUBSCRIPTION_ROLES, TOPIC_ROLES, DEAD_LETTER_SUBSCRIPTION_ROLES):
            for service, roles in table.items():
                bad = FORBIDDEN_ROLES.intersection(roles)
                if bad:
                    raise ValueError(f"iam: {service}: basic roles {sorted(bad)} are not allowed")


class ServiceAccess(pulumi.ComponentResource):
    """Least-privilege grants of each service account, scoped to the resource.

    Attributes:
        bindings: every IAM member resource created, keyed ``<service>/<scope>/<role>``.
    """

    def __init__(self, name: str, args: ServiceAccessArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:iam:ServiceAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bindings: dict[str, pulumi.CustomResource] = {}
        instance_condition = pulumi.Output.concat(
            'resource.type == "sqladmin.googleapis.com/Instance" && resource.name == "projects/',
            args.project,
            "/instances/",
            args.sql_instance_name,
            '"',
        )
        for service, member in sorted(args.members.items()):
            for role in BUCKET_ROLES.get(service, ()):
                self.bindings[f"{service}/bucket/{role}"] = gcp.storage.BucketIAMMember(
                    f"{service}-bucket-{_short(role)}",
                    bucket=args.bucket_name,
                    role=role,
                    member=member,
                    opts=child,
                )
            for role in SUBSCRIPTION_ROLES.get(service, ()):
                self.bindings[f"{service}/subscription/{role}"] = gcp.pubsub.SubscriptionIAMMember(
                    f"{service}-subscription-{_short(role)}",
                    project=args.project,
                    subscription=args.subscription_name,
                    role=role,
                    member=member,
                    opts=child,
                )
            if args.uploads_topic_name is not None:
                for role in TOPIC_ROLES.get(service, ()):
                    self.bindings[f"{service}/topic/{role}"] = gcp.pubsub.TopicIAMMember(
                        f"{service}-topic-{_short(role)}",
                        project=args.project,
                        topic=args.uploads_topic_name,
                        role=role,
                        member=member,
                        opts=child,
                    )
            if args.dead_letter_subscription_name is not None:
                for role in DEAD_LETTER_SUBSCRIPTION_ROLES.get(service, ()):
                    self.bindings[f"{service}/dead-letter-subscription/{role}"] = gcp.pubsub.SubscriptionIAMMember(
                        f"{service}-dead-letter-subscription-{_short(role)}",
                        project=args.project,
                        subscription=args.dead_letter_subscription_name,
                        role=role,
                        member=member,
                        opts=child,
                    )
            # Why a condition: Cloud SQL has no instance-level IAM policy; the
            # condition limits the project grant to this stack's instance.
            for role in SQL_ROLES:
                self.bindings[f"{service}/sql/{role}"] = gcp.projects.IAMMember(
                    f"{service}-sql-{_short(role)}",
                    project=args.project,
                    role=role,
                    member=member,
                    condition=gcp.projects.IAMMemberConditionArgs(
                        title=f"only-{_short(role)}-on-instance",
                        description="Limit the grant to the stack's Cloud SQL instance.",
                        expression=instance_condition,
                    ),
                    opts=child,
                )
        self.register_outputs({})
