"""Artifact Registry: the Docker repository of the service images, readable by the GKE nodes,
and the repository of the images' BuildKit cache (infra/images.py).

Sources: https://cloud.google.com/artifact-registry/docs/repositories/create-repos,
https://cloud.google.com/artifact-registry/docs/repositories/cleanup-policy,
https://cloud.google.com/artifact-registry/docs/access-control#roles.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp

#: Read-only access to the repository's images.
READER_ROLE = "roles/artifactregistry.reader"
#: Untagged images older than this are deleted by the cleanup policy (seconds, 30 days).
UNTAGGED_MAX_AGE = f"{30 * 24 * 3600}s"
#: This many most recent versions of each image are always kept.
KEEP_RECENT_VERSIONS = 20
#: Build cache versions no longer tagged (overwritten by a later build) are deleted after this (7 days).
CACHE_UNTAGGED_MAX_AGE = f"{7 * 24 * 3600}s"


@dataclass(frozen=True)
class RegistryArgs:
    """Inputs of :class:`Registry`.

    Attributes:
        project, region: the repository lives in ``region`` (same as the cluster: pulls stay regional).
        repository_id: repository name (the service images).
        cache_repository_id: repository name of the BuildKit registry cache; None creates none.
        reader_members: IAM members (``serviceAccount:...``) granted ``roles/artifactregistry.reader``
            on this repository only, keyed by a short logical name.
        labels: repository labels.
    """

    project: str
    region: str
    repository_id: str
    cache_repository_id: Optional[str] = None
    reader_members: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


class Registry(pulumi.ComponentResource):
    """The Docker repository and its reader grants.

    Attributes:
        repository: the ``artifactregistry.Repository``.
        url: ``<region>-docker.pkg.dev/<project>/<repository>`` (Output[str]); images are
            ``<url>/<service>@sha256:...``.
        cache_repository: the build cache ``artifactregistry.Repository`` or None.
        cache_url: its URL (Output[str]) or None; cache manifests are ``<cache_url>/<service>:buildcache``.
        host: ``<region>-docker.pkg.dev``, the registry host to authenticate against.
    """

    def __init__(self, name: str, args: RegistryArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = gcp.artifactregistry.Repository(
            "services",
            project=args.project,
            location=args.region,
            repository_id=args.repository_id,
            format="DOCKER",
            description="Images of the print-platform services (deployed by digest).",
            # Why immutable tags: a tag can never be re-pointed at other bits;
            # deployments pin digests anyway.
            docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=True),
            cleanup_policy_dry_run=False,
            cleanup_policies=[
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="delete-old-untagged",
                    action="DELETE",
                    condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                        tag_state="UNTAGGED", older_than=UNTAGGED_MAX_AGE
                    ),
                ),
                gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                    id="keep-recent",
                    action="KEEP",
                    most_recent_versions=gcp.artifactregistry.RepositoryCleanupPolicyMostRecentVersionsArgs(
                        keep_count=KEEP_RECENT_VERSIONS
                    ),
                ),
            ],
            labels=dict(args.labels),
            opts=child,
        )
        self.readers = [
            gcp.artifactregistry.RepositoryIamMember(
                f"reader-{key}",
                project=args.project,
                location=args.region,
                repository=self.repository.name,
                role=READER_ROLE,
                member=member,
                opts=child,
            )
            for key, member in sorted(args.reader_members.items())
        ]
        self.url = pulumi.Output.concat(
            self.repository.location, "-docker.pkg.dev/", self.repository.project, "/", self.repository.repository_id
        )
        self.host = f"{args.region}-docker.pkg.dev"
        self.cache_repository: Optional[gcp.artifactregistry.Repository] = None
        self.cache_url: Optional[pulumi.Output[str]] = None
        if args.cache_repository_id is not None:
            self.cache_repository = gcp.artifactregistry.Repository(
                "build-cache",
                project=args.project,
                location=args.region,
                repository_id=args.cache_repository_id,
                format="DOCKER",
                description="BuildKit registry cache of the print-platform service images (not deployable).",
                # Why mutable tags here (unlike the images): BuildKit overwrites the
                # cache manifest (<service>:buildcache) on every build by design.
                docker_config=gcp.artifactregistry.RepositoryDockerConfigArgs(immutable_tags=False),
                cleanup_policy_dry_run=False,
                cleanup_policies=[
                    gcp.artifactregistry.RepositoryCleanupPolicyArgs(
                        id="delete-stale-cache",
                        action="DELETE",
                        condition=gcp.artifactregistry.RepositoryCleanupPolicyConditionArgs(
                            tag_state="UNTAGGED", older_than=CACHE_UNTAGGED_MAX_AGE
                        ),
                    ),
                ],
                labels=dict(args.labels),
                opts=child,
            )
            self.cache_url = pulumi.Output.concat(
                self.cache_repository.location, "-docker.pkg.dev/", self.cache_repository.project, "/",
                self.cache_repository.repository_id,
            )
        self.register_outputs({"url": self.url, **({"cache_url": self.cache_url} if self.cache_url else {})})
