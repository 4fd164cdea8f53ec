"""GCS: the uploads bucket and its OBJECT_FINALIZE notification to the uploads topic.

Sources: https://cloud.google.com/storage/docs/uniform-bucket-level-access,
https://cloud.google.com/storage/docs/public-access-prevention,
https://cloud.google.com/storage/docs/object-versioning,
https://cloud.google.com/storage/docs/lifecycle,
https://cloud.google.com/storage/docs/pubsub-notifications (payload JSON_API_V1; the
Cloud Storage service agent needs roles/pubsub.publisher on the topic).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from infra.config import ConfigModel

#: The only event the extractor consumes: a new object (generation) finished uploading.
NOTIFICATION_EVENTS = ("OBJECT_FINALIZE",)
#: The notification payload format the extractor parses (docs/seams.md).
PAYLOAD_FORMAT = "JSON_API_V1"


def private_versioned_bucket(resource_name: str, *, bucket_name: pulumi.Input[str], project: pulumi.Input[str],
                             location: pulumi.Input[str], noncurrent_version_retention_days: int, force_destroy: bool,
                             labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> gcp.storage.Bucket:
    """A STANDARD bucket with the hardening every bucket of this project has (the uploads bucket,
    the bootstrap's state bucket).

    Invariants, not knobs:
    - uniform bucket-level access: IAM only, no per-object ACLs (IAM conditions need it);
    - public access prevention ``enforced``: never public, whatever IAM says;
    - versioning, with noncurrent versions deleted after ``noncurrent_version_retention_days``
      (an overwritten or deleted object stays recoverable until then).
    """
    return gcp.storage.Bucket(
        resource_name,
        name=bucket_name,
        project=project,
        location=location,
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        versioning=gcp.storage.BucketVersioningArgs(enabled=True),
        lifecycle_rules=[
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                    days_since_noncurrent_time=noncurrent_version_retention_days,
                    with_state="ARCHIVED",
                ),
            ),
        ],
        force_destroy=force_destroy,
        labels=dict(labels),
        opts=opts,
    )


class StorageConfig(ConfigModel):
    """``print-platform:storage``, the inputs of :class:`Storage`: ``noncurrentVersionRetentionDays`` (1..3650): days a
    replaced or deleted object version is kept before the lifecycle rule deletes it."""

    noncurrent_version_retention_days: int = Field(default=30, ge=1, le=3650)


@dataclass(frozen=True)
class StorageContext:
    """What :class:`Storage` takes besides its :class:`StorageConfig`.

    Attributes:
        project, location: project id and bucket location (the stack's region).
        bucket_name: globally unique bucket name.
        uploads_topic_id: full id of the uploads topic (``projects/<p>/topics/<t>``).
        uploads_topic_name: short name of that topic (for the IAM grant).
        protect: Pulumi ``protect`` and ``force_destroy`` off (prod).
        labels: bucket labels.
    """

    project: str
    location: str
    bucket_name: str
    uploads_topic_id: pulumi.Input[str]
    uploads_topic_name: pulumi.Input[str]
    protect: bool
    labels: Mapping[str, str] = field(default_factory=dict)


class Storage(pulumi.ComponentResource):
    """Uploads bucket, GCS service agent publish grant, finalize notification.

    Attributes:
        bucket: the ``storage.Bucket``; ``bucket_name`` (Output[str]).
        notification: the ``storage.Notification``.
        service_agent_email: the project's Cloud Storage service agent (Output[str]).
    """

    def __init__(self, name: str, config: StorageConfig, context: StorageContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:storage:Storage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Why versioning: an overwritten or deleted upload stays recoverable until the
        # lifecycle rule removes the noncurrent version. Why: in prod, `pulumi destroy`
        # must never empty the bucket (force_destroy only when not protected).
        self.bucket = private_versioned_bucket(
            "uploads", bucket_name=context.bucket_name, project=context.project, location=context.location,
            noncurrent_version_retention_days=config.noncurrent_version_retention_days,
            force_destroy=not context.protect, labels=context.labels,
            opts=pulumi.ResourceOptions(parent=self, protect=context.protect),
        )
        self.bucket_name = self.bucket.name

        gcs_agent = gcp.storage.get_project_service_account_output(project=context.project)
        self.service_agent_email = gcs_agent.email_address
        self.agent_publisher = gcp.pubsub.TopicIAMMember(
            "gcs-agent-publishes-uploads",
            project=context.project,
            topic=context.uploads_topic_name,
            role="roles/pubsub.publisher",
            member=pulumi.Output.concat("serviceAccount:", gcs_agent.email_address),
            opts=child,
        )
        # Why depends_on: GCS checks the publish permission when the notification is created.
        self.notification = gcp.storage.Notification(
            "uploads-finalize",
            bucket=self.bucket.name,
            topic=context.uploads_topic_id,
            payload_format=PAYLOAD_FORMAT,
            event_types=list(NOTIFICATION_EVENTS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.agent_publisher]),
        )
        self.register_outputs({"bucket_name": self.bucket_name})
