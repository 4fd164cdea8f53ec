"""Alerting for one stack: e-mail notification channels, alert policies and an uptime check.

Signals (one ``gcp.monitoring.AlertPolicy`` each, all metric-threshold conditions
built from Cloud Monitoring filters, see docs/edge.md for the choice):

==========================  ===========================================================  ==============
policy key                  metric (https://cloud.google.com/monitoring/api/metrics_gcp)  threshold unit
==========================  ===========================================================  ==============
``lb_5xx_ratio``            ``loadbalancing.googleapis.com/https/request_count``          fraction 0..1
                            (``response_code_class = 500`` over all requests)
``lb_latency_p95``          ``loadbalancing.googleapis.com/https/total_latencies``        milliseconds
``uptime``                  ``monitoring.googleapis.com/uptime_check/check_passed``       failing regions
``pubsub_oldest_unacked``   ``pubsub.googleapis.com/subscription/oldest_unacked_message_age``  seconds
``dead_letter``             ``pubsub.googleapis.com/subscription/num_undelivered_messages``    messages
                            (on the dead-letter subscription)
``sql_cpu``                 ``cloudsql.googleapis.com/database/cpu/utilization``         fraction 0..1
``sql_memory``              ``cloudsql.googleapis.com/database/memory/utilization``      fraction 0..1
``sql_disk``                ``cloudsql.googleapis.com/database/disk/utilization``        fraction 0..1
``container_restarts``      ``kubernetes.io/container/restart_count``                    restarts per window
==========================  ===========================================================  ==============

Thresholds, durations, windows and severities are data (``environments/<stack>/alerts.yaml``,
read by ``infra/settings.py`` and mapped onto :class:`MonitoringArgs` in ``infra/program.py``);
this module holds only the metric definitions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_gcp as gcp

#: Alert policy severities the Cloud Monitoring API accepts
#: (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#severity).
SEVERITIES = ("CRITICAL", "ERROR", "WARNING")
#: Uptime check periods the API accepts, seconds
#: (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.uptimeCheckConfigs#UptimeCheckConfig.FIELDS.period).
UPTIME_PERIODS_SEC = (60, 300, 600, 900)
#: The signals an alert policy is created for (keys of ``MonitoringArgs.alerts``).
SIGNALS = (
    "lb_5xx_ratio",
    "lb_latency_p95",
    "uptime",
    "pubsub_oldest_unacked",
    "dead_letter",
    "sql_cpu",
    "sql_memory",
    "sql_disk",
    "container_restarts",
)
#: Signals whose threshold is a utilisation or ratio and must lie in [0, 1].
FRACTION_SIGNALS = ("lb_5xx_ratio", "sql_cpu", "sql_memory", "sql_disk")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class MonitoringArgsError(ValueError):
    """Raised when an Args value is malformed; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise MonitoringArgsError(f"monitoring: {field_name}: {message}")


@dataclass(frozen=True)
class AlertSpec:
    """Threshold and timing of one alert policy.

    Attributes:
        threshold: the value the aligned series is compared with (``COMPARISON_GT``:
            the policy fires when the series is *above* it). Unit per signal, see
            the module table (fractions for ratios/utilisations, ms, s, counts).
            ``dead_letter`` must be 0 ("any message").
        duration_seconds: how long the condition must hold before an incident
            opens (``condition_threshold.duration``), 0..86400, multiple of 60
            unless 0 (API constraint for metric thresholds).
        severity: ``CRITICAL``, ``ERROR`` or ``WARNING``.
        window_seconds: alignment period (the window each point aggregates),
            60..86400 seconds. For ``container_restarts`` this is the window the
            restarts are counted in.

    Raises:
        MonitoringArgsError: a value outside those ranges.
    """

    threshold: float
    duration_seconds: int
    severity: str
    window_seconds: int = 60

    def validate(self, signal: str) -> None:
        """Check the spec for ``signal``; raise :class:`MonitoringArgsError` naming ``alerts.<signal>.<field>``."""
        where = f"alerts.{signal}"
        _check(isinstance(self.threshold, (int, float)) and not isinstance(self.threshold, bool)
               and self.threshold >= 0, f"{where}.threshold",
               f"must be a non-negative number, got {self.threshold!r}")
        if signal in FRACTION_SIGNALS:
            _check(0 < self.threshold <= 1, f"{where}.threshold",
                   f"is a fraction and must be in (0, 1], got {self.threshold!r}")
        if signal == "dead_letter":
            _check(self.threshold == 0, f"{where}.threshold",
                   f"must be 0 (alert on any dead-lettered message), got {self.threshold!r}")
        if signal == "uptime":
            _check(float(self.threshold).is_integer() and self.threshold >= 1, f"{where}.threshold",
                   f"is a number of failing checker regions and must be an integer >= 1, got {self.threshold!r}")
        _check(isinstance(self.duration_seconds, int) and 0 <= self.duration_seconds <= 86400
               and self.duration_seconds % 60 == 0, f"{where}.duration_seconds",
               f"must be a multiple of 60 in 0..86400, got {self.duration_seconds!r}")
        _check(self.severity in SEVERITIES, f"{where}.severity",
               f"must be one of {SEVERITIES}, got {self.severity!r}")
        _check(isinstance(self.window_seconds, int) and 60 <= self.window_seconds <= 86400,
               f"{where}.window_seconds", f"must be an integer in 60..86400, got {self.window_seconds!r}")


@dataclass(frozen=True)
class MonitoringArgs:
    """Inputs of :class:`Monitoring`.

    Attributes:
        stack: stack name, used in display names and user labels (``dev``, ``prod``).
        notification_emails: one e-mail notification channel per address
            (at least one; duplicates rejected).
        alerts: one :class:`AlertSpec` per signal; exactly the keys in ``SIGNALS``.
        domain: host name of the public endpoint the uptime check probes over HTTPS.
        url_map_name_regex: RE2 regex matching the load balancer's URL map name
            (``LoadBalancer.url_map_name_regex``), scoping the LB metrics.
        extractor_subscription: Pub/Sub subscription id (short name) of the extractor.
        dead_letter_subscription: subscription id on the dead-letter topic.
        sql_database_id: Cloud SQL monitored-resource id ``<project>:<instance>``.
        cluster_name: GKE cluster name (container restarts are scoped to it).
        namespace: Kubernetes namespace of the services (restarts are scoped to it).
        project: project id (defaults to the provider's project).
        health_path: path the uptime check GETs (default ``/healthz``).
        uptime_period_seconds: uptime check period, one of ``UPTIME_PERIODS_SEC``.
        uptime_timeout_seconds: uptime check timeout, 1..60 seconds.
        iap_enabled: when IAP guards the backend, an unauthenticated probe is
            answered by IAP (302 to sign-in / 401) rather than by files-api; the
            uptime check then accepts those codes and checks DNS, certificate,
            load balancer and IAP (backend health is covered by the 5xx/latency/restart alerts).
        labels: user labels added to every alert policy.

    Raises:
        MonitoringArgsError: a malformed value, naming the field.
    """

    stack: str
    notification_emails: Sequence[str]
    alerts: Mapping[str, AlertSpec]
    domain: str
    url_map_name_regex: pulumi.Input[str]
    extractor_subscription: pulumi.Input[str]
    dead_letter_subscription: pulumi.Input[str]
    sql_database_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    project: Optional[pulumi.Input[str]] = None
    health_path: str = "/healthz"
    uptime_period_seconds: int = 60
    uptime_timeout_seconds: int = 10
    iap_enabled: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(isinstance(self.stack, str) and bool(re.match(r"^[a-z][a-z0-9-]*$", self.stack)), "stack",
               f"must be a lower-case name, got {self.stack!r}")
        emails = list(self.notification_emails) if not isinstance(self.notification_emails, str) else None
        _check(bool(emails), "notification_emails", f"must be a non-empty list of addresses, got {self.notification_emails!r}")
        for i, email in enumerate(emails):
            _check(isinstance(email, str) and bool(_EMAIL.match(email)), f"notification_emails[{i}]",
                   f"is not an e-mail address: {email!r}")
        _check(len(set(emails)) == len(emails), "notification_emails", f"has duplicates: {emails!r}")
        missing = [s for s in SIGNALS if s not in self.alerts]
        unknown = [s for s in self.alerts if s not in SIGNALS]
        _check(not missing, "alerts", f"missing signals {missing} (need exactly {list(SIGNALS)})")
        _check(not unknown, "alerts", f"unknown signals {unknown} (need exactly {list(SIGNALS)})")
        for signal, spec in self.alerts.items():
            _check(isinstance(spec, AlertSpec), f"alerts.{signal}", f"must be an AlertSpec, got {type(spec).__name__}")
            spec.validate(signal)
        _check(isinstance(self.domain, str) and bool(_HOST.match(self.domain)), "domain",
               f"must be a lower-case fully qualified host name, got {self.domain!r}")
        _check(isinstance(self.health_path, str) and self.health_path.startswith("/"), "health_path",
               f"must start with '/', got {self.health_path!r}")
        _check(self.uptime_period_seconds in UPTIME_PERIODS_SEC, "uptime_period_seconds",
               f"must be one of {UPTIME_PERIODS_SEC}, got {self.uptime_period_seconds!r}")
        _check(isinstance(self.uptime_timeout_seconds, int) and 1 <= self.uptime_timeout_seconds <= 60,
               "uptime_timeout_seconds", f"must be an integer in 1..60, got {self.uptime_timeout_seconds!r}")


class Monitoring(pulumi.ComponentResource):
    """Notification channels, the alert policies of ``SIGNALS`` and the uptime check.

    Attributes:
        channels: the ``NotificationChannel`` resources, in ``notification_emails`` order.
        policies: ``{signal: AlertPolicy}`` for every signal in ``SIGNALS``.
        uptime_check: the ``UptimeCheckConfig``.
    """

    def __init__(self, name: str, args: MonitoringArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:monitoring:Monitoring", name, None, opts)
        raise NotImplementedError("Monitoring resources land in the next commit")
