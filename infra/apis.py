"""The Google Cloud APIs a stack calls: the one list, the resource type -> API map, the roles
that follow from them, and the component that enables them.

One place for three facts the project used to keep in prose:

- :data:`APIS`: every API a platform stack calls, why, and the roles the CI identities
  need for it: the bootstrap program (``infra/bootstrap/``) grants the deploy service
  account :func:`deploy_roles` and the preview service account :func:`preview_roles`
  on the stack's project (no basic role anywhere);
- :func:`api_for_type`: the API a registered resource type calls (a test fails when the
  program registers a type that is not mapped, or whose API is not enabled);
- :class:`ApiServices`: one ``gcp.projects.Service`` per API, never disabled on destroy,
  and :meth:`ApiServices.transformation`, a Pulumi resource transformation that makes
  every resource depend on the Service of its API. ``infra/program.py`` registers it
  once for the stack, so no component wires the dependency by hand.

Sources: https://cloud.google.com/service-usage/docs/enable-disable,
https://registry.terraform.io/providers/hashicorp/google/latest/docs/resources/google_project_service
(``disable_on_destroy``, ``disable_dependent_services``),
https://cloud.google.com/iam/docs/understanding-roles (the predefined roles below).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import pulumi
import pulumi_gcp as gcp

#: The API ``gcp.projects.Service`` itself calls; every other Service depends on it.
SERVICE_USAGE = "serviceusage.googleapis.com"


@dataclass(frozen=True)
class Api:
    """One Google Cloud API a stack calls.

    Attributes:
        name: the service name (``compute.googleapis.com``).
        purpose: what of ours calls it (resource types or runtime callers).
        deploy_roles: predefined roles the deploy service account needs on the stack's
            project for the resources of this API (create, update, delete, set IAM).
        preview_roles: read-only roles the preview service account needs for
            ``pulumi preview --refresh`` of those resources.
        before_program: enabled by the bootstrap program, because the platform program
            cannot enable anything without it (Service Usage) or reads through it first.
        only_with_iap: enabled only when ``print-platform:loadBalancer.iap.enabled``.
    """

    name: str
    purpose: str
    deploy_roles: tuple[str, ...] = ()
    preview_roles: tuple[str, ...] = ()
    before_program: bool = False
    only_with_iap: bool = False

    @property
    def short_name(self) -> str:
        """``compute.googleapis.com`` -> ``compute`` (the Service's logical name)."""
        return self.name.split(".")[0]


#: Every API a platform stack calls (one place; docs/infra.md "APIs and roles" mirrors it).
APIS: tuple[Api, ...] = (
    Api(SERVICE_USAGE,
        "enabling the APIs below (gcp:projects/service) and the Pub/Sub service agent (gcp:projects/serviceIdentity)",
        deploy_roles=("roles/serviceusage.serviceUsageAdmin",),
        preview_roles=("roles/serviceusage.serviceUsageViewer",),
        before_program=True),
    Api("cloudresourcemanager.googleapis.com",
        "project IAM grants with conditions (gcp:projects/iAMMember) and project look-ups",
        deploy_roles=("roles/resourcemanager.projectIamAdmin",),
        # Why securityReviewer: refresh reads the IAM policy of every resource that has one
        # (project, bucket, topic, subscription, repository, service account, IAP).
        preview_roles=("roles/iam.securityReviewer",),
        before_program=True),
    Api("iam.googleapis.com",
        "service accounts and their Workload Identity bindings (gcp:serviceaccount/*)",
        # serviceAccountUser: act as the GKE node service account when creating the cluster.
        deploy_roles=("roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser"),
        preview_roles=("roles/iam.serviceAccountViewer",),
        before_program=True),
    Api("iamcredentials.googleapis.com",
        "short-lived tokens: the pods' Workload Identity (GKE metadata server) and CI impersonation"),
    Api("compute.googleapis.com",
        "VPC, subnet, router, NAT, firewall, PSA range, static IP, SSL policy, Cloud Armor (gcp:compute/*)",
        deploy_roles=("roles/compute.networkAdmin", "roles/compute.securityAdmin"),
        preview_roles=("roles/compute.viewer",)),
    Api("servicenetworking.googleapis.com",
        "the Private Service Access connection of Cloud SQL (gcp:servicenetworking/*)",
        deploy_roles=("roles/servicenetworking.networksAdmin",)),
    Api("container.googleapis.com",
        "the Autopilot cluster (gcp:container/*) and everything applied through its API server (kubernetes:*)",
        # container.admin includes container.clusters.connect (the DNS endpoint).
        deploy_roles=("roles/container.admin",),
        preview_roles=("roles/container.viewer",)),
    Api("dns.googleapis.com",
        "Cloud DNS, Autopilot's cluster DNS provider (GKE 'Using Cloud DNS for GKE' lists the API as a prerequisite)"),
    Api("sqladmin.googleapis.com",
        "the Cloud SQL instance, database and IAM users (gcp:sql/*); the Cloud SQL Auth Proxy",
        deploy_roles=("roles/cloudsql.admin",),
        preview_roles=("roles/cloudsql.viewer",)),
    Api("storage.googleapis.com",
        "the uploads bucket, its IAM and notification (gcp:storage/*)",
        deploy_roles=("roles/storage.admin",),
        preview_roles=("roles/storage.bucketViewer",)),
    Api("pubsub.googleapis.com",
        "topics, subscriptions and their IAM (gcp:pubsub/*)",
        deploy_roles=("roles/pubsub.admin",),
        preview_roles=("roles/pubsub.viewer",)),
    Api("artifactregistry.googleapis.com",
        "the image repository and its IAM (gcp:artifactregistry/*), image builds (docker-build:*)",
        # admin: the repository, its IAM, and pushing the images the deploy builds.
        deploy_roles=("roles/artifactregistry.admin",),
        preview_roles=("roles/artifactregistry.reader",)),
    Api("certificatemanager.googleapis.com",
        "the managed certificate and certificate map (gcp:certificatemanager/*)",
        deploy_roles=("roles/certificatemanager.owner",),
        preview_roles=("roles/certificatemanager.viewer",)),
    Api("monitoring.googleapis.com",
        "notification channels, alert policies, uptime check (gcp:monitoring/*); Managed Prometheus",
        deploy_roles=("roles/monitoring.editor",),
        preview_roles=("roles/monitoring.viewer",)),
    Api("logging.googleapis.com",
        "cluster, flow and NAT logs; log-based resources (gcp:logging/*)",
        deploy_roles=("roles/logging.configWriter",),
        preview_roles=("roles/logging.viewer",)),
    Api("billingbudgets.googleapis.com",
        "the stack's budget (gcp:billing/budget); the role is granted on the billing account, not the project"),
    Api("iap.googleapis.com",
        "Identity-Aware Proxy on the load balancer's backends and its IAM (gcp:iap/*)",
        deploy_roles=("roles/iap.admin",),
        only_with_iap=True),
)

_BY_NAME: Mapping[str, Api] = {api.name: api for api in APIS}

#: Resource types that call no Google API when created (provider configuration only).
NO_API_PATTERNS: tuple[str, ...] = ("pulumi:providers:*",)

#: Resource type token (glob) -> the API it calls. Exact tokens first, then module globs.
#: Every type the platform or bootstrap program registers must match one entry.
TYPE_APIS: tuple[tuple[str, str], ...] = (
    ("gcp:projects/service:Service", SERVICE_USAGE),
    ("gcp:projects/serviceIdentity:ServiceIdentity", SERVICE_USAGE),
    ("gcp:projects/iAMMember:IAMMember", "cloudresourcemanager.googleapis.com"),
    ("gcp:projects/iAMBinding:IAMBinding", "cloudresourcemanager.googleapis.com"),
    ("gcp:projects/iAMCustomRole:IAMCustomRole", "iam.googleapis.com"),
    ("gcp:billing/budget:Budget", "billingbudgets.googleapis.com"),
    ("gcp:serviceaccount/*", "iam.googleapis.com"),
    ("gcp:iam/*", "iam.googleapis.com"),
    ("gcp:compute/*", "compute.googleapis.com"),
    ("gcp:servicenetworking/*", "servicenetworking.googleapis.com"),
    ("gcp:container/*", "container.googleapis.com"),
    ("gcp:sql/*", "sqladmin.googleapis.com"),
    ("gcp:storage/*", "storage.googleapis.com"),
    ("gcp:pubsub/*", "pubsub.googleapis.com"),
    ("gcp:artifactregistry/*", "artifactregistry.googleapis.com"),
    ("gcp:certificatemanager/*", "certificatemanager.googleapis.com"),
    ("gcp:monitoring/*", "monitoring.googleapis.com"),
    ("gcp:logging/*", "logging.googleapis.com"),
    ("gcp:iap/*", "iap.googleapis.com"),
    ("gcp:dns/*", "dns.googleapis.com"),
    ("gcp:kms/*", "cloudkms.googleapis.com"),
    ("docker-build:*", "artifactregistry.googleapis.com"),
    ("kubernetes:*", "container.googleapis.com"),
)


class UnmappedResourceType(KeyError):
    """A resource type with no entry in :data:`TYPE_APIS` (add it there, and its API to :data:`APIS`)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def api_for_type(type_token: str) -> Optional[str]:
    """The API a resource of ``type_token`` calls.

    Args:
        type_token: a Pulumi type token, e.g. ``gcp:compute/network:Network``.

    Returns:
        The service name (``compute.googleapis.com``), or None for types that call no
        API (:data:`NO_API_PATTERNS`: provider resources).

    Raises:
        UnmappedResourceType: the type is in neither list.
    """
    if any(fnmatch.fnmatchcase(type_token, p) for p in NO_API_PATTERNS):
        return None
    for pattern, api in TYPE_APIS:
        if fnmatch.fnmatchcase(type_token, pattern):
            return api
    raise UnmappedResourceType(
        f"resource type {type_token!r} has no API in infra/apis.py TYPE_APIS: add the API it calls"
    )


def platform_apis(iap_enabled: bool) -> tuple[str, ...]:
    """The APIs a platform stack enables, in :data:`APIS` order (IAP only with ``iap_enabled``)."""
    return tuple(api.name for api in APIS if iap_enabled or not api.only_with_iap)


def before_program_apis() -> tuple[str, ...]:
    """The APIs the bootstrap program enables in each stack project before the platform program runs."""
    return tuple(api.name for api in APIS if api.before_program)


def _roles(apis: Iterable[str], attr: str) -> tuple[str, ...]:
    roles: list[str] = []
    for name in apis:
        for role in getattr(_BY_NAME[name], attr):
            if role not in roles:
                roles.append(role)
    return tuple(sorted(roles))


def deploy_roles(apis: Iterable[str]) -> tuple[str, ...]:
    """The deploy service account's project roles for ``apis`` (sorted, distinct; KeyError on an unknown API)."""
    return _roles(apis, "deploy_roles")


def preview_roles(apis: Iterable[str]) -> tuple[str, ...]:
    """The preview service account's read-only project roles for ``apis`` (sorted, distinct)."""
    return _roles(apis, "preview_roles")


# --------------------------------------------------------------------------- component


@dataclass(frozen=True)
class ApiServicesArgs:
    """Inputs of :class:`ApiServices`.

    Attributes:
        project: project id the APIs are enabled in.
        services: service names (``compute.googleapis.com``); :data:`SERVICE_USAGE`, if
            present, is created first and every other Service depends on it.
    """

    project: str
    services: Sequence[str] = field(default_factory=tuple)


class ApiServices(pulumi.ComponentResource):
    """One ``gcp.projects.Service`` per API, never switched off by Pulumi.

    ``disable_on_destroy=False``: a ``pulumi destroy`` (or dropping an API from the list)
    must never switch an API off under something else using it (the bootstrap program,
    another stack in the project, the console). ``disable_dependent_services=False``: the
    same for APIs that depend on it.

    Attributes:
        services: ``{service name: projects.Service}``; each Service is named
            ``<component name>-<api short name>`` (``apis-compute``), unique per project.
    """

    def __init__(self, name: str, args: ApiServicesArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:apis:ApiServices", name, None, opts)
        self.services: dict[str, gcp.projects.Service] = {}
        ordered = sorted(args.services, key=lambda s: (s != SERVICE_USAGE, s))
        for service in ordered:
            if service in self.services:
                raise ValueError(f"apis: {service} listed twice")
            self.services[service] = gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.services[SERVICE_USAGE]] if SERVICE_USAGE in self.services else None,
                ),
            )
        self.register_outputs({"services": sorted(self.services)})

    def dependency_for(self, type_token: str) -> Optional[gcp.projects.Service]:
        """The Service a resource of ``type_token`` must wait for (None: no API, or not enabled here).

        Raises:
            UnmappedResourceType: the type is not in :data:`TYPE_APIS`.
        """
        api = api_for_type(type_token)
        return self.services.get(api) if api else None

    def transformation(self, args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        """Resource transformation: add ``depends_on`` the Service of the resource's API.

        Register it once (``pulumi.runtime.register_stack_transformation``) and every
        custom resource registered after it waits for its API. Components, the Services
        themselves (they already wait for Service Usage) and types that call no API are
        left alone; an unmapped type is left alone too (tests/infra/test_apis.py fails on it).
        """
        if not isinstance(args.resource, pulumi.CustomResource):
            return None
        if args.type_ == "gcp:projects/service:Service" and args.props.get("service") in self.services:
            return None
        try:
            service = self.dependency_for(args.type_)
        except UnmappedResourceType:
            return None
        if service is None:
            return None
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(depends_on=[service]))
        return pulumi.ResourceTransformationResult(args.props, opts)


def wait_for_apis(
    services: Mapping[str, ApiServices], default_project: str
) -> "pulumi.ResourceTransformation":
    """A resource transformation for programs that touch several projects (the bootstrap).

    Args:
        services: ``{project id: ApiServices}`` of each project.
        default_project: the project of resources whose ``project`` input is not a plain
            string (e.g. bucket or key IAM members, which name their resource instead).

    Returns:
        A transformation that applies :meth:`ApiServices.transformation` of the
        resource's project (its ``project`` input, else ``default_project``).
    """

    def transformation(args: pulumi.ResourceTransformationArgs) -> Optional[pulumi.ResourceTransformationResult]:
        project = args.props.get("project") if isinstance(args.props, Mapping) else None
        owner = services.get(project if isinstance(project, str) else default_project)
        return owner.transformation(args) if owner is not None else None

    return transformation
