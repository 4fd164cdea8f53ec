"""Pub/Sub: the uploads topic (GCS finalize notifications), the extractor's pull
subscription with retry and dead-lettering, and the dead-letter topic with its own subscription.

Sources: https://cloud.google.com/pubsub/docs/handling-failures (dead-letter topics,
retry policy, the Pub/Sub service agent's publisher/subscriber grants),
https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions (field ranges).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, field_validator, model_validator

from infra.config import ConfigModel, duration_seconds

#: Retention of the dead-letter subscription: the API maximum (7 days), so a
#: dead-lettered message can be inspected and replayed after a weekend.
DEAD_LETTER_RETENTION = "604800s"
#: Ack deadline of the dead-letter subscription (messages there are inspected by
#: hand, not processed). The local platform creates it with the same value.
DEAD_LETTER_ACK_DEADLINE_SECONDS = 60
#: Subscriptions never expire from inactivity (an empty ``ttl`` means "never").
NEVER_EXPIRE = ""


class PubSubConfig(ConfigModel):
    """``print-platform:pubsub``, the inputs of :class:`PubSub`: the extractor subscription's delivery settings.

    Ranges are the Pub/Sub API's (https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.subscriptions):
    ack deadline 10..600 s, max delivery attempts 5..100, message retention
    600s..604800s (10 min..7 days), backoff 0..600 s with minimum <= maximum.
    """

    ack_deadline_seconds: int = Field(ge=10, le=600)
    max_delivery_attempts: int = Field(ge=5, le=100)
    message_retention_duration: str = Field(default="604800s", description="`<n>s`, 600s–604800s")
    minimum_backoff: str = Field(default="10s", description="`<n>s`, 0s–600s, ≤ `maximumBackoff`")
    maximum_backoff: str = Field(default="600s", description="`<n>s`, 0s–600s")

    @field_validator("message_retention_duration")
    @classmethod
    def _retention(cls, v: str) -> str:
        if not 600 <= duration_seconds(v) <= 604800:
            raise ValueError(f"{v} is outside 600s..604800s")
        return v

    @field_validator("minimum_backoff", "maximum_backoff")
    @classmethod
    def _backoff(cls, v: str) -> str:
        if not 0 <= duration_seconds(v) <= 600:
            raise ValueError(f"{v} is outside 0s..600s")
        return v

    @model_validator(mode="after")
    def _ordered(self) -> "PubSubConfig":
        if duration_seconds(self.minimum_backoff) > duration_seconds(self.maximum_backoff):
            raise ValueError(f"minimumBackoff: {self.minimum_backoff} exceeds maximumBackoff {self.maximum_backoff}")
        return self

    @staticmethod
    def seconds(duration: str) -> int:
        """``"600s"`` -> 600."""
        return duration_seconds(duration)


@dataclass(frozen=True)
class PubSubContext:
    """What :class:`PubSub` takes besides its :class:`PubSubConfig`.

    Attributes:
        project: project id.
        uploads_topic, extractor_subscription, dead_letter_topic, dead_letter_subscription:
            ids from ``infra.settings.Names``.
        labels: resource labels.
    """

    project: str
    uploads_topic: str
    extractor_subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    labels: Mapping[str, str] = field(default_factory=dict)


class PubSub(pulumi.ComponentResource):
    """Topics, subscriptions and the Pub/Sub service agent's dead-letter grants.

    Attributes:
        uploads_topic, dead_letter_topic: ``pubsub.Topic`` resources; ``uploads_topic_id``
            (full id ``projects/<p>/topics/<name>``) and ``uploads_topic_name`` (Output[str]).
        extractor_subscription, dead_letter_subscription: ``pubsub.Subscription`` resources;
            ``extractor_subscription_name`` / ``dead_letter_subscription_name`` short ids (Output[str]).
        service_agent_email: the Pub/Sub service agent (Output[str]).
    """

    def __init__(self, name: str, config: PubSubConfig, context: PubSubContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:pubsub:PubSub", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = dict(context.labels)

        self.uploads_topic = gcp.pubsub.Topic(
            "uploads", name=context.uploads_topic, project=context.project, labels=labels, opts=child
        )
        self.dead_letter_topic = gcp.pubsub.Topic(
            "uploads-dead-letter", name=context.dead_letter_topic, project=context.project, labels=labels, opts=child
        )
        # Why a subscription on the dead-letter topic: messages published to a topic
        # without subscriptions are dropped; this one keeps them for inspection.
        self.dead_letter_subscription = gcp.pubsub.Subscription(
            "uploads-dead-letter",
            name=context.dead_letter_subscription,
            project=context.project,
            topic=self.dead_letter_topic.id,
            ack_deadline_seconds=DEAD_LETTER_ACK_DEADLINE_SECONDS,
            message_retention_duration=DEAD_LETTER_RETENTION,
            retain_acked_messages=False,
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=NEVER_EXPIRE),
            labels=labels,
            opts=child,
        )
        self.extractor_subscription = gcp.pubsub.Subscription(
            "extractor",
            name=context.extractor_subscription,
            project=context.project,
            topic=self.uploads_topic.id,
            ack_deadline_seconds=config.ack_deadline_seconds,
            message_retention_duration=config.message_retention_duration,
            # Why exponential backoff: a failing object is retried with growing
            # delays instead of being redelivered immediately in a hot loop.
            retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                minimum_backoff=config.minimum_backoff,
                maximum_backoff=config.maximum_backoff,
            ),
            # Why dead-lettering: a poison message stops being redelivered after
            # max_delivery_attempts and lands where the dead-letter alert sees it.
            dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                dead_letter_topic=self.dead_letter_topic.id,
                max_delivery_attempts=config.max_delivery_attempts,
            ),
            expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=NEVER_EXPIRE),
            labels=labels,
            opts=child,
        )

        # The Pub/Sub service agent forwards undeliverable messages: it needs publish on
        # the dead-letter topic and subscribe (to ack the forwarded message) on the source.
        self.service_identity = gcp.projects.ServiceIdentity(
            "pubsub-agent", project=context.project, service="pubsub.googleapis.com", opts=child
        )
        self.service_agent_email = self.service_identity.email
        agent = pulumi.Output.concat("serviceAccount:", self.service_identity.email)
        self.dead_letter_publisher = gcp.pubsub.TopicIAMMember(
            "agent-publishes-dead-letter",
            project=context.project,
            topic=self.dead_letter_topic.name,
            role="roles/pubsub.publisher",
            member=agent,
            opts=child,
        )
        self.source_subscriber = gcp.pubsub.SubscriptionIAMMember(
            "agent-subscribes-extractor",
            project=context.project,
            subscription=self.extractor_subscription.name,
            role="roles/pubsub.subscriber",
            member=agent,
            opts=child,
        )

        self.uploads_topic_id = self.uploads_topic.id
        self.uploads_topic_name = self.uploads_topic.name
        self.dead_letter_topic_name = self.dead_letter_topic.name
        self.extractor_subscription_name = self.extractor_subscription.name
        self.dead_letter_subscription_name = self.dead_letter_subscription.name
        self.register_outputs(
            {
                "uploads_topic": self.uploads_topic_name,
                "dead_letter_topic": self.dead_letter_topic_name,
                "extractor_subscription": self.extractor_subscription_name,
            }
        )
