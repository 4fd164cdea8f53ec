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
``pending_age``             ``prometheus.googleapis.com/pipeline_pending_oldest_age_seconds/gauge``  seconds
                            (the extractor's backlog gauge via Managed Prometheus: the
                            oldest file still ``pending``, extractor.backlog)
==========================  ===========================================================  ==============

``pending_age`` is the promise "every file answered 201 ends processed or
failed within the bound": its threshold in ``alerts.yaml`` is the stack's
bound (``ReconcileConfig.final_bound_seconds``; infra/settings.py rejects a
threshold below ``reconcile.pendingBoundSeconds``, which would page for files
the reconciler has not even re-driven yet).

Besides the policies, :class:`Monitoring` creates log-based counter metrics
(``LOG_METRICS``) for what the reconciler and the sweep do, counted from their
structured log lines: ``logging.googleapis.com/user/<stack>-<name>``.

Thresholds, durations, windows and severities are data (``environments/<stack>/alerts.yaml``,
validated by :class:`AlertsConfig`, the component's config beside :class:`AlertingConfig`);
this module holds only the metric definitions.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, field_validator

from infra.budget import MAX_CHANNELS as BUDGET_MAX_CHANNELS
from infra.config import EMAIL_PATTERN, ConfigModel

#: Alert policy severities the Cloud Monitoring API accepts
#: (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#severity).
SEVERITIES = ("CRITICAL", "ERROR", "WARNING")
#: Uptime check periods the API accepts, seconds
#: (https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.uptimeCheckConfigs#UptimeCheckConfig.FIELDS.period).
UPTIME_PERIODS_SEC = (60, 300, 600, 900)
#: The signals an alert policy is created for (keys of ``AlertsConfig.alerts``).
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
    "pending_age",
)
#: Log-based counter metrics: ``{name: (log message matched exactly, description)}``. The messages
#: are the reconciler's (apps/extractor reconcile.py) and the sweep's (apps/files-api sweep.py).
LOG_METRICS: dict[str, tuple[str, str]] = {
    "reconciler-redrives": ("re-drove the notification of a pending file",
                            "Notifications of pending files the reconciler published again."),
    "reconciler-failed": ("marked failed: re-drives exhausted",
                          "Files the reconciler marked failed after its re-drives found no result."),
    "reconciler-object-gone": ("marked failed: object generation gone",
                               "Pending files marked failed because their object generation is gone."),
    "dead-letters-redriven": ("re-drove a dead-lettered message",
                              "Dead-lettered notifications moved back to the uploads topic (make redrive / the redrive Job)."),
    "sweep-removed-uploads": ("removed unfinished upload",
                              "Upload rows without a generation (and their objects) the sweep removed."),
    "sweep-removed-objects": ("removed orphan object",
                              "Objects no files row names (a failed upload's leftovers) the sweep removed."),
}
#: What files-api's ``GET /healthz`` answers (``{"status": "ok"}``, apps/files-api ops.py);
#: the uptime check matches it so a 200 from anything else (a default backend, a parked
#: domain) does not pass. tests/infra/test_monitoring.py asserts it against the app.
HEALTH_JSON_PATH = "$.status"
HEALTH_JSON_VALUE = "ok"
#: Signals whose threshold is a utilisation or ratio and must lie in [0, 1].
#: Signals that watch the public endpoint: their policies (and the uptime check)
#: wait for ``MonitoringContext.edge_depends_on`` (the releases).
EDGE_SIGNALS = ("lb_5xx_ratio", "uptime")
FRACTION_SIGNALS = ("lb_5xx_ratio", "sql_cpu", "sql_memory", "sql_disk")



class MonitoringArgsError(ValueError):
    """Raised when an Args value is malformed; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise MonitoringArgsError(f"monitoring: {field_name}: {message}")


class AlertThreshold(ConfigModel):
    """Threshold and timing of one alert policy (an ``alerts.<signal>`` entry of
    ``environments/<stack>/alerts.yaml``).

    Attributes:
        threshold: the value the aligned series is compared with (``COMPARISON_GT``:
            the policy fires when the series is *above* it), >= 0. Unit per signal, see
            the module table (fractions in (0, 1] for :data:`FRACTION_SIGNALS`, ms, s,
            counts); ``dead_letter`` must be 0 ("any message"), ``uptime`` a whole
            number of failing checker regions >= 1 (checked by :func:`signal_problems`).
        duration_seconds: how long the condition must hold before an incident
            opens (``condition_threshold.duration``), 0..86400, multiple of 60
            (API constraint for metric thresholds).
        severity: ``CRITICAL``, ``ERROR`` or ``WARNING``.
        window_seconds: alignment period (the window each point aggregates),
            60..86400 seconds. For ``container_restarts`` this is the window the
            restarts are counted in.
    """

    threshold: float = Field(description=f"≥ 0; in (0, 1] for {', '.join(FRACTION_SIGNALS)}; 0 for dead_letter; "
                                         "a whole number ≥ 1 for uptime")
    duration_seconds: int = Field(description="multiple of 60 in 0–86400")
    severity: str = Field(description=f"one of {' | '.join(SEVERITIES)}")
    window_seconds: int = Field(default=60, description="60–86400")

    @field_validator("threshold", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ValueError(f"must be a non-negative number, got {v!r}")
        return v

    @field_validator("duration_seconds")
    @classmethod
    def _duration(cls, v: int) -> int:
        if not (0 <= v <= 86400 and v % 60 == 0):
            raise ValueError(f"must be a multiple of 60 in 0..86400, got {v!r}")
        return v

    @field_validator("severity")
    @classmethod
    def _severity(cls, v: str) -> str:
        if v not in SEVERITIES:
            raise ValueError(f"must be one of {SEVERITIES}, got {v!r}")
        return v

    @field_validator("window_seconds")
    @classmethod
    def _window(cls, v: int) -> int:
        if not 60 <= v <= 86400:
            raise ValueError(f"must be an integer in 60..86400, got {v!r}")
        return v


def signal_problems(alerts: Mapping[str, AlertThreshold]) -> list[str]:
    """What is wrong with ``alerts`` as the policies of :data:`SIGNALS`: one ``<signal>[.threshold]: <problem>`` each.

    Exactly the signals of :data:`SIGNALS`, and the thresholds whose unit depends on
    the signal (fractions, ``dead_letter`` 0, ``uptime`` a region count). [] when fine.
    """
    found: list[str] = []
    missing = [s for s in SIGNALS if s not in alerts]
    unknown = [s for s in alerts if s not in SIGNALS]
    if missing:
        found.append(f"missing signal(s) {missing} (need {list(SIGNALS)})")
    if unknown:
        found.append(f"unknown signal(s) {unknown} (need {list(SIGNALS)})")
    for signal, spec in alerts.items():
        t = spec.threshold
        if signal in FRACTION_SIGNALS and not 0 < t <= 1:
            found.append(f"{signal}.threshold: is a fraction and must be in (0, 1], got {t!r}")
        if signal == "dead_letter" and t != 0:
            found.append(f"{signal}.threshold: must be 0 (alert on any dead-lettered message), got {t!r}")
        if signal == "uptime" and not (float(t).is_integer() and t >= 1):
            found.append(f"{signal}.threshold: is a number of failing checker regions and must be an integer >= 1, got {t!r}")
    return found


class AlertingConfig(ConfigModel):
    """``print-platform:alerting``: ``notificationEmails``: non-empty list of distinct addresses."""

    notification_emails: list[str] = Field(
        min_length=1, description=f"distinct e-mail addresses; with a `budget` at most {BUDGET_MAX_CHANNELS}")

    @field_validator("notification_emails")
    @classmethod
    def _emails(cls, v: list[str]) -> list[str]:
        for address in v:
            if not EMAIL_PATTERN.match(address):
                raise ValueError(f"{address!r} is not an e-mail address")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate addresses in {v}")
        return v


class UptimeConfig(ConfigModel):
    """``uptime`` of ``environments/<stack>/alerts.yaml``: the uptime check's ``periodSeconds``,
    ``timeoutSeconds`` and ``healthPath`` (the path it GETs over HTTPS)."""

    period_seconds: int = Field(default=60, description=f"one of {UPTIME_PERIODS_SEC}")
    timeout_seconds: int = Field(default=10, description="1–60")
    health_path: str = Field(default="/healthz", description="starts with `/`")

    @field_validator("period_seconds")
    @classmethod
    def _period(cls, v: int) -> int:
        if v not in UPTIME_PERIODS_SEC:
            raise ValueError(f"must be one of {UPTIME_PERIODS_SEC}, got {v!r}")
        return v

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout(cls, v: int) -> int:
        if not 1 <= v <= 60:
            raise ValueError(f"must be an integer in 1..60, got {v!r}")
        return v

    @field_validator("health_path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"must start with '/', got {v!r}")
        return v


class AlertsConfig(ConfigModel):
    """``environments/<stack>/alerts.yaml``: ``uptime`` (:class:`UptimeConfig`) and
    ``alerts`` (``{signal: AlertThreshold}`` for exactly the signals of :data:`SIGNALS`)."""

    uptime: UptimeConfig = UptimeConfig()
    alerts: dict[str, AlertThreshold]

    @field_validator("alerts")
    @classmethod
    def _signals(cls, v: dict[str, AlertThreshold]) -> dict[str, AlertThreshold]:
        found = signal_problems(v)
        if found:
            # One line per problem; infra.config.problems reports each under alerts.<...>.
            raise ValueError("\n".join(found))
        return v


@dataclass(frozen=True)
class MonitoringContext:
    """What :class:`Monitoring` takes besides its config (:class:`AlertingConfig`, :class:`AlertsConfig`).

    Attributes:
        stack: stack name, used in display names and user labels (``dev``, ``prod``).
        domain: host name of the public endpoint the uptime check probes over HTTPS
            (``LoadBalancerConfig.domain``).
        url_map_name_regex: RE2 regex matching the load balancer's URL map name
            (``LoadBalancer.url_map_name_regex``), scoping the LB metrics.
        extractor_subscription: Pub/Sub subscription id (short name) of the extractor.
        dead_letter_subscription: subscription id on the dead-letter topic.
        sql_database_id: Cloud SQL monitored-resource id ``<project>:<instance>``.
        cluster_name: GKE cluster name (container restarts are scoped to it).
        namespace: Kubernetes namespace of the services (restarts are scoped to it).
        project: project id (defaults to the provider's project).
        iap_enabled: when IAP guards the backend, an unauthenticated probe is
            answered by IAP (302 to sign-in / 401) rather than by files-api; the
            uptime check then accepts those codes and checks DNS, certificate,
            load balancer and IAP (backend health is covered by the 5xx/latency/restart alerts).
        labels: user labels added to every alert policy.
        edge_depends_on: resources the uptime check and the :data:`EDGE_SIGNALS`
            policies are created after (the Helm releases), so a fresh bring-up
            does not page while the certificate and the services come up.

    Raises:
        MonitoringArgsError: a malformed value, naming the field.
    """

    stack: str
    domain: str
    url_map_name_regex: pulumi.Input[str]
    extractor_subscription: pulumi.Input[str]
    dead_letter_subscription: pulumi.Input[str]
    sql_database_id: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    namespace: pulumi.Input[str]
    project: Optional[pulumi.Input[str]] = None
    iap_enabled: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    edge_depends_on: Sequence[pulumi.Resource] = ()

    def __post_init__(self) -> None:
        _check(isinstance(self.stack, str) and bool(re.match(r"^[a-z][a-z0-9-]*$", self.stack)), "stack",
               f"must be a lower-case name, got {self.stack!r}")


class Monitoring(pulumi.ComponentResource):
    """Notification channels, the alert policies of ``SIGNALS`` and the uptime check.

    Attributes:
        channels: the ``NotificationChannel`` resources, in ``notification_emails`` order.
        policies: ``{signal: AlertPolicy}`` for every signal in ``SIGNALS``.
        uptime_check: the ``UptimeCheckConfig``.
    """

    def __init__(self, name: str, alerting: AlertingConfig, alerts: AlertsConfig, context: MonitoringContext,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project = context.project if context.project is not None else pulumi.Config("gcp").get("project")
        if project is None:
            raise MonitoringArgsError("monitoring: project: not given and gcp:project is not set in the stack config "
                                      "(the uptime check's monitored resource needs it)")

        # Logical names follow the address, not its position, so adding or removing one
        # address touches only that channel.
        self.channels = [
            gcp.monitoring.NotificationChannel(
                f"email-{email}",
                project=context.project,
                type="email",
                display_name=f"{context.stack}: {email}",
                labels={"email_address": email},
                user_labels={**context.labels, "stack": context.stack},
                opts=child,
            )
            for email in alerting.notification_emails
        ]
        channel_names = [c.name for c in self.channels]

        edge = pulumi.ResourceOptions(parent=self, depends_on=list(context.edge_depends_on))
        self.uptime_check = gcp.monitoring.UptimeCheckConfig(
            "uptime",
            project=context.project,
            display_name=f"{context.stack}: https://{context.domain}{alerts.uptime.health_path}",
            period=f"{alerts.uptime.period_seconds}s",
            timeout=f"{alerts.uptime.timeout_seconds}s",
            http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                request_method="GET",
                path=alerts.uptime.health_path,
                port=443,
                use_ssl=True,
                validate_ssl=True,  # an expired or wrong certificate fails the check
                accepted_response_status_codes=uptime_accepted_codes(context.iap_enabled),
            ),
            content_matchers=uptime_content_matchers(context.iap_enabled),
            monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url", labels={"host": context.domain, "project_id": project}),
            user_labels={**context.labels, "stack": context.stack},
            opts=edge,
        )

        filters = signal_filters(context, self.uptime_check.uptime_check_id)
        self.policies: dict[str, gcp.monitoring.AlertPolicy] = {}
        for signal in SIGNALS:
            spec = alerts.alerts[signal]
            definition = SIGNAL_DEFINITIONS[signal]
            self.policies[signal] = gcp.monitoring.AlertPolicy(
                signal.replace("_", "-"),
                project=context.project,
                display_name=f"{context.stack}: {definition.title}",
                combiner="OR",
                severity=spec.severity,
                notification_channels=channel_names,
                conditions=[gcp.monitoring.AlertPolicyConditionArgs(
                    display_name=definition.condition(spec),
                    condition_threshold=threshold_condition(
                        signal, spec, filters[signal],
                        denominator_filter=lb_requests_filter(context.url_map_name_regex)
                        if signal == "lb_5xx_ratio" else None),
                )],
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    mime_type="text/markdown",
                    subject=f"[{context.stack}] {definition.title}",
                    content=definition.documentation(context.stack, spec),
                ),
                user_labels={**context.labels, "stack": context.stack, "signal": signal.replace("_", "-")},
                opts=edge if signal in EDGE_SIGNALS else child,
            )

        self.log_metrics: dict[str, gcp.logging.Metric] = {}
        for metric, (message, description) in LOG_METRICS.items():
            self.log_metrics[metric] = gcp.logging.Metric(
                f"log-{metric}",
                project=context.project,
                name=f"{context.stack}-{metric}",
                description=description,
                filter=log_metric_filter(context.namespace, message),
                metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                    metric_kind="DELTA", value_type="INT64", unit="1", display_name=f"{context.stack}: {metric}"),
                opts=child,
            )
        self.register_outputs({
            "log_metrics": {m: r.name for m, r in self.log_metrics.items()},
            "notification_channels": channel_names,
            "uptime_check_id": self.uptime_check.uptime_check_id,
            "alert_policies": {signal: p.name for signal, p in self.policies.items()},
        })


@dataclass(frozen=True)
class SignalDefinition:
    """How one signal is measured and explained (the code half of an alert; the data half is :class:`AlertThreshold`).

    Attributes:
        title: policy display name (after the stack prefix).
        unit: unit of the threshold, for messages.
        per_series_aligner: Cloud Monitoring aligner applied to each series over the window.
        cross_series_reducer: reducer across series (``None``: keep each series).
        group_by: fields kept by the reducer.
        runbook: markdown, the first steps an on-call engineer takes.
    """

    title: str
    unit: str
    per_series_aligner: str
    cross_series_reducer: Optional[str]
    group_by: tuple[str, ...]
    runbook: str

    def condition(self, spec: AlertThreshold) -> str:
        """Condition display name, e.g. ``> 0.05 (fraction) for 300s``."""
        return f"{self.title} > {spec.threshold:g} {self.unit} for {spec.duration_seconds}s"

    def documentation(self, stack: str, spec: AlertThreshold) -> str:
        """Markdown shown in the incident: what fired, the threshold and the runbook."""
        return (
            f"## {self.title} ({stack})\n\n"
            f"Fires when the value stays above **{spec.threshold:g} {self.unit}** "
            f"for {spec.duration_seconds}s (window {spec.window_seconds}s). "
            f"Thresholds live in `environments/{stack}/alerts.yaml`.\n\n"
            f"### Runbook\n\n{self.runbook}\n\nMore: docs/edge.md#runbooks"
        )


SIGNAL_DEFINITIONS: dict[str, SignalDefinition] = {
    "lb_5xx_ratio": SignalDefinition(
        "files-api 5xx ratio", "(fraction of requests)", "ALIGN_RATE", "REDUCE_SUM", (),
        "1. Check the files-api pods (`kubectl -n <namespace> get pods`, recent restarts, logs in Cloud Logging).\n"
        "2. Check Cloud SQL and GCS availability; 502s with no healthy backend mean the NEG has no ready pod.\n"
        "3. If a release just rolled out, roll it back (`helm rollback` / previous image digest)."),
    "lb_latency_p95": SignalDefinition(
        "files-api p95 latency", "ms", "ALIGN_DELTA", "REDUCE_PERCENTILE_95", (),
        "1. Check the HPA (`kubectl get hpa`) and pod CPU; scale out if pinned at max replicas.\n"
        "2. Check Cloud SQL CPU and Query Insights for slow queries.\n"
        "3. Large uploads raise latency: compare with the request size distribution."),
    "uptime": SignalDefinition(
        "public health check failing", "failing checker regions", "ALIGN_NEXT_OLDER", "REDUCE_COUNT_FALSE",
        ("resource.labels.host",),
        "1. `curl -v https://<domain>/healthz` from outside: DNS A record, certificate (Certificate Manager state), 4xx/5xx.\n"
        "2. `kubectl describe gateway` and the HTTPRoute status; backend health of the NEG.\n"
        "3. A Cloud Armor ban or WAF false positive shows as 403/429 in the LB request logs."),
    "pubsub_oldest_unacked": SignalDefinition(
        "extractor backlog age", "s", "ALIGN_MAX", None, (),
        "1. Check the extractor pods are running and pulling (logs, restarts).\n"
        "2. Check for a poison message: repeated nacks show in the extractor logs and end in the dead-letter topic.\n"
        "3. Scale the extractor deployment if the backlog grows under load."),
    "dead_letter": SignalDefinition(
        "message in the dead-letter subscription", "messages", "ALIGN_MAX", None, (),
        "1. Pull without ack from the dead-letter subscription to read the message and its attributes.\n"
        "2. Find the extractor error for that object in the logs and `extraction_results`.\n"
        "3. After fixing the cause, republish the message to the uploads topic, then ack it here."),
    "sql_cpu": SignalDefinition(
        "Cloud SQL CPU utilisation", "(fraction)", "ALIGN_MEAN", None, (),
        "1. Query Insights: top queries by CPU.\n2. Check connection counts and the services' load.\n"
        "3. Raise the instance tier in the stack config if the load is legitimate."),
    "sql_memory": SignalDefinition(
        "Cloud SQL memory utilisation", "(fraction)", "ALIGN_MEAN", None, (),
        "1. Query Insights and `pg_stat_activity`: long-running or memory-heavy queries, connection count.\n"
        "2. Raise the instance tier in the stack config if sustained."),
    "sql_disk": SignalDefinition(
        "Cloud SQL disk utilisation", "(fraction)", "ALIGN_MEAN", None, (),
        "1. Check table and index sizes; vacuum bloat.\n"
        "2. Confirm storage auto-increase is on, or raise the disk size in the stack config."),
    "pending_age": SignalDefinition(
        "oldest pending file past the bound", "s", "ALIGN_MAX", "REDUCE_MAX", (),
        "1. `kubectl -n <namespace> get cronjob,jobs -l app.kubernetes.io/component=reconciler`: is the reconciler "
        "running and succeeding? Its logs say what it re-drove (`re-drove the notification of a pending file`) or why "
        "it could not (GCS / Pub/Sub errors).\n"
        "2. Check the extractor: pods pulling, `extractor_messages_total{outcome=\"retry\"}` rising, dead-letter backlog.\n"
        "3. A deleted bucket notification config or topic stops every notification: compare "
        "`gcloud storage buckets notifications list gs://<bucket>` with the stack; `pulumi up` restores it.\n"
        "4. Files that keep failing re-drives end `failed` with the reason; re-drive dead letters once fixed "
        "(docs/extractor.md#reconciliation)."),
    "container_restarts": SignalDefinition(
        "container restarts", "restarts per window", "ALIGN_DELTA", "REDUCE_SUM",
        ("resource.labels.container_name",),
        "1. `kubectl -n <namespace> get pods` and `kubectl describe pod`: OOMKilled, failed probes, crash loops.\n"
        "2. Read the previous container's logs (`kubectl logs --previous`).\n"
        "3. The Cloud SQL Auth Proxy sidecar restarting points at IAM or network issues."),
}


def signal_filters(context: MonitoringContext, uptime_check_id: pulumi.Input[str]) -> dict[str, pulumi.Output[str]]:
    """Cloud Monitoring filter per signal (an ``Output[str]``, since resource ids are Outputs).

    ``lb_5xx_ratio`` is the numerator; its denominator is :func:`lb_requests_filter`.
    Filter syntax: https://cloud.google.com/monitoring/api/v3/filters.
    """
    fmt = pulumi.Output.format
    lb_requests = lb_requests_filter(context.url_map_name_regex)
    subscription = 'resource.type = "pubsub_subscription" AND resource.labels.subscription_id = "{0}"'
    sql = 'resource.type = "cloudsql_database" AND resource.labels.database_id = "{0}" AND metric.type = "cloudsql.googleapis.com/database/{1}/utilization"'
    return {
        "lb_5xx_ratio": lb_requests.apply(lambda f: f"{f} AND metric.labels.response_code_class = 500"),
        "lb_latency_p95": fmt(
            'resource.type = "https_lb_rule" AND resource.labels.url_map_name = monitoring.regex.full_match("{0}")'
            ' AND metric.type = "loadbalancing.googleapis.com/https/total_latencies"', context.url_map_name_regex),
        "uptime": fmt(
            'resource.type = "uptime_url" AND metric.type = "monitoring.googleapis.com/uptime_check/check_passed"'
            ' AND metric.labels.check_id = "{0}"', uptime_check_id),
        "pubsub_oldest_unacked": fmt(
            subscription + ' AND metric.type = "pubsub.googleapis.com/subscription/oldest_unacked_message_age"',
            context.extractor_subscription),
        "dead_letter": fmt(
            subscription + ' AND metric.type = "pubsub.googleapis.com/subscription/num_undelivered_messages"',
            context.dead_letter_subscription),
        "sql_cpu": fmt(sql, context.sql_database_id, "cpu"),
        "sql_memory": fmt(sql, context.sql_database_id, "memory"),
        "sql_disk": fmt(sql, context.sql_database_id, "disk"),
        "pending_age": fmt(
            'resource.type = "prometheus_target" AND resource.labels.namespace = "{0}"'
            ' AND metric.type = "prometheus.googleapis.com/pipeline_pending_oldest_age_seconds/gauge"', context.namespace),
        "container_restarts": fmt(
            'resource.type = "k8s_container" AND resource.labels.cluster_name = "{0}"'
            ' AND resource.labels.namespace_name = "{1}" AND metric.type = "kubernetes.io/container/restart_count"',
            context.cluster_name, context.namespace),
    }


def log_metric_filter(namespace: pulumi.Input[str], message: str) -> pulumi.Output[str]:
    """Logging filter of one ``LOG_METRICS`` entry: the services' containers in ``namespace``, that message
    (``jsonPayload.message``: the JSON log field of pipeline_core.log)."""
    return pulumi.Output.format(
        'resource.type = "k8s_container" AND resource.labels.namespace_name = "{0}" AND jsonPayload.message = "{1}"',
        namespace, message)


def lb_requests_filter(url_map_name_regex: pulumi.Input[str]) -> pulumi.Output[str]:
    """All requests the Gateway's load balancer served (denominator of the 5xx ratio)."""
    return pulumi.Output.format(
        'resource.type = "https_lb_rule" AND resource.labels.url_map_name = monitoring.regex.full_match("{0}")'
        ' AND metric.type = "loadbalancing.googleapis.com/https/request_count"', url_map_name_regex)


def threshold_condition(signal: str, spec: AlertThreshold, filter_: pulumi.Input[str],
                        denominator_filter: Optional[pulumi.Input[str]] = None,
                        ) -> gcp.monitoring.AlertPolicyConditionConditionThresholdArgs:
    """The ``condition_threshold`` of ``signal``: ``COMPARISON_GT`` against ``spec.threshold``,
    ``spec.duration_seconds``, aggregated over ``spec.window_seconds`` as ``SIGNAL_DEFINITIONS`` says.

    With ``denominator_filter`` (``lb_5xx_ratio``: all LB requests) it is a ratio condition,
    numerator ``filter_`` over the denominator, both aggregated the same way into a single
    series so they align (https://cloud.google.com/monitoring/alerts/types-of-conditions#metric-ratio).
    """
    definition = SIGNAL_DEFINITIONS[signal]
    period = f"{spec.window_seconds}s"
    aggregation = gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
        alignment_period=period,
        per_series_aligner=definition.per_series_aligner,
        cross_series_reducer=definition.cross_series_reducer,
        group_by_fields=list(definition.group_by) or None,
    )
    ratio = {}
    if denominator_filter is not None:
        ratio = {
            "denominator_filter": denominator_filter,
            "denominator_aggregations": [gcp.monitoring.AlertPolicyConditionConditionThresholdDenominatorAggregationArgs(
                alignment_period=period,
                per_series_aligner=definition.per_series_aligner,
                cross_series_reducer=definition.cross_series_reducer,
            )],
        }
    return gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
        filter=filter_,
        comparison="COMPARISON_GT",
        threshold_value=float(spec.threshold),
        duration=f"{spec.duration_seconds}s",
        aggregations=[aggregation],
        trigger=gcp.monitoring.AlertPolicyConditionConditionThresholdTriggerArgs(count=1),
        **ratio,
    )


def uptime_content_matchers(iap_enabled: bool,
                            ) -> Optional[list[gcp.monitoring.UptimeCheckConfigContentMatcherArgs]]:
    """Body check of the uptime probe: ``$.status == "ok"`` (files-api's /healthz JSON).

    None with IAP: the probe then sees IAP's answer, not files-api's body.
    """
    if iap_enabled:
        return None
    return [gcp.monitoring.UptimeCheckConfigContentMatcherArgs(
        content=HEALTH_JSON_VALUE,
        matcher="MATCHES_JSON_PATH",
        json_path_matcher=gcp.monitoring.UptimeCheckConfigContentMatcherJsonPathMatcherArgs(
            json_path=HEALTH_JSON_PATH, json_matcher="EXACT_MATCH"),
    )]


def uptime_accepted_codes(iap_enabled: bool) -> list[gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs]:
    """Status codes that pass the uptime check: the API default (2xx) without IAP; with IAP
    also 302 (redirect to Google sign-in) and 401, which IAP answers to an unauthenticated probe."""
    if not iap_enabled:
        return [gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_class="STATUS_CLASS_2XX")]
    return [
        gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_class="STATUS_CLASS_2XX"),
        gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_value=302),
        gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_value=401),
    ]
