"""Usage assumptions of a stack (``environments/<stack>/usage.yaml``): what the plan cannot say.

Every number is written with the assumption behind it::

    storage:
      storedGib: {value: 20, assumption: "2,000 uploads a month of 10 MB, kept ..."}

and validated here (pydantic, unknown keys rejected, quantities >= 0, the
assumption at least a short sentence), so a typo fails with
``environments/<stack>/usage.yaml: <key.path>: <problem>`` instead of silently
pricing zero. The keys, their units and what they feed: docs/cost.md.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Iterator, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from tools.cost.prices import ROOT, format_validation_error, read_yaml

#: Shortest accepted assumption text: a number needs its reason, not a placeholder.
MIN_ASSUMPTION_CHARS = 15


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Quantity(_Model):
    """A number (>= 0, in the key's unit) and the assumption it rests on."""

    value: Decimal = Field(ge=0)
    assumption: str = Field(min_length=MIN_ASSUMPTION_CHARS)


class Flag(_Model):
    """A yes/no assumption and why."""

    value: bool
    assumption: str = Field(min_length=MIN_ASSUMPTION_CHARS)


class GkeUsage(_Model):
    """``gke``: ``clusterFeeCredit`` -- this stack's cluster gets the billing account's GKE free-tier credit."""

    cluster_fee_credit: Flag


class NetworkUsage(_Model):
    """``network``: ``natVms`` (nodes using Cloud NAT, count), ``natDataGib`` (GiB/month through NAT)."""

    nat_vms: Quantity
    nat_data_gib: Quantity


class LoadBalancerUsage(_Model):
    """``loadBalancer``: ``requestsMillions`` (requests/month, millions), ``inboundGib`` / ``outboundGib``
    (GiB/month through the load balancer; outbound is also Premium Tier internet egress)."""

    requests_millions: Quantity
    inbound_gib: Quantity
    outbound_gib: Quantity


class StorageUsage(_Model):
    """``storage``: ``storedGib`` (average GiB in the uploads bucket, noncurrent versions included),
    ``classAThousands`` / ``classBThousands`` (operations/month, thousands)."""

    stored_gib: Quantity
    class_a_thousands: Quantity
    class_b_thousands: Quantity


class PubSubUsage(_Model):
    """``pubsub``: ``throughputGib`` (publish + delivery GiB/month, 1 KB minimum per request),
    ``retainedGib`` (GiB retained by topic retention or retained acked messages, when configured)."""

    throughput_gib: Quantity
    retained_gib: Quantity


class DatabaseUsage(_Model):
    """``database``: ``backupGib`` (average backup + transaction log storage, GiB)."""

    backup_gib: Quantity


class ArtifactRegistryUsage(_Model):
    """``artifactRegistry``: ``storedGib`` (image layers kept by the cleanup policy, GiB)."""

    stored_gib: Quantity


class MonitoringUsage(_Model):
    """``monitoring``: ``prometheusSeriesPerPod`` (time series each Pod exposes on /metrics),
    ``alertSeriesPerCondition`` (time series an alert condition's query returns)."""

    prometheus_series_per_pod: Quantity
    alert_series_per_condition: Quantity


class LoggingUsage(_Model):
    """``logging``: ``ingestedGib`` (application, GKE and audit log GiB/month into the _Default bucket),
    ``vpcFlowLogsGib`` (VPC Flow Logs of the nodes' subnet, GiB/month), ``firewallLogsGib``
    (Firewall Rules Logging, GiB/month); the last two are vended network logs."""

    ingested_gib: Quantity
    vpc_flow_logs_gib: Quantity
    firewall_logs_gib: Quantity


class Usage(_Model):
    """The whole ``usage.yaml``."""

    gke: GkeUsage
    network: NetworkUsage
    load_balancer: LoadBalancerUsage
    storage: StorageUsage
    pubsub: PubSubUsage
    database: DatabaseUsage
    artifact_registry: ArtifactRegistryUsage
    monitoring: MonitoringUsage
    logging: LoggingUsage

    def assumptions(self) -> Iterator[tuple[str, object, str]]:
        """``(key.path in camelCase, value, assumption)`` for every number, in file order."""
        for section_name in type(self).model_fields:
            section = getattr(self, section_name)
            for field_name in type(section).model_fields:
                item = getattr(section, field_name)
                yield f"{to_camel(section_name)}.{to_camel(field_name)}", item.value, item.assumption


def usage_file(stack: str) -> str:
    """``environments/<stack>/usage.yaml`` (relative to the repository root)."""
    return f"environments/{stack}/usage.yaml"


def parse_usage(data: object, shown: str) -> Usage:
    """Validate parsed usage data; ConfigError ``<file>: <key.path>: <problem>``."""
    try:
        return Usage.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise format_validation_error(exc, shown) from None


def load_usage(stack: str, root: Optional[Path] = None) -> Usage:
    """Read and validate ``<root>/environments/<stack>/usage.yaml``.

    Raises:
        ConfigError: missing file, bad YAML, unknown key, negative number or a
            missing assumption; the message names the file and the key.
    """
    root = root or ROOT
    shown = usage_file(stack)
    return parse_usage(read_yaml(root / shown, shown), shown)
