"""Alerting (infra/monitoring.py) under Pulumi mocks, once per real stack file.

Assertions run on the recorded registrations after the program finished (never
inside an ``apply``) and compare them with ``Pulumi.<stack>.yaml`` and
``environments/<stack>/alerts.yaml``: a changed threshold, a dropped channel or
a policy scoped to the wrong resource fails a test.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest

from infra import monitoring as mon
from infra.settings import StackSettings, load_stack_settings

STACKS = ["dev", "prod"]

CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
UPTIME_CHECK_ID = "files-api-healthz-4f1c2a"
URL_MAP_REGEX = "gkegw1-[a-z0-9]+-print-platform-external-[a-z0-9]+"

#: The metric each signal must watch (Cloud Monitoring metric list).
METRICS = {
    "lb_5xx_ratio": "loadbalancing.googleapis.com/https/request_count",
    "lb_latency_p95": "loadbalancing.googleapis.com/https/total_latencies",
    "uptime": "monitoring.googleapis.com/uptime_check/check_passed",
    "pubsub_oldest_unacked": "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "dead_letter": "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "sql_cpu": "cloudsql.googleapis.com/database/cpu/utilization",
    "sql_memory": "cloudsql.googleapis.com/database/memory/utilization",
    "sql_disk": "cloudsql.googleapis.com/database/disk/utilization",
    "container_restarts": "kubernetes.io/container/restart_count",
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every registration; returns its inputs plus what the provider would compute."""

    def __init__(self, project: str) -> None:
        self.project = project
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        outputs = dict(args.inputs)
        if args.typ == CHANNEL:
            outputs["name"] = f"projects/{self.project}/notificationChannels/{args.name}-0001"
        if args.typ == UPTIME:
            outputs["uptimeCheckId"] = UPTIME_CHECK_ID
        if args.typ == POLICY:
            outputs["name"] = f"projects/{self.project}/alertPolicies/{args.name}-0001"
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}, None


def monitoring_args(settings: StackSettings) -> mon.MonitoringArgs:
    """The stack's settings as MonitoringArgs (what infra/program.py passes)."""
    names = settings.names
    return mon.MonitoringArgs(
        stack=settings.stack,
        project=settings.project,
        notification_emails=settings.config.alerting.notification_emails,
        alerts={signal: mon.AlertSpec(threshold=a.threshold, duration_seconds=a.duration_seconds,
                                      severity=a.severity, window_seconds=a.window_seconds)
                for signal, a in settings.alerts.alerts.items()},
        domain=settings.config.load_balancer.domain,
        url_map_name_regex=URL_MAP_REGEX,
        extractor_subscription=names.extractor_subscription,
        dead_letter_subscription=names.dead_letter_subscription,
        sql_database_id=f"{settings.project}:{names.sql_instance}",
        cluster_name=names.cluster,
        namespace=names.namespace,
        health_path=settings.alerts.uptime.health_path,
        uptime_period_seconds=settings.alerts.uptime.period_seconds,
        uptime_timeout_seconds=settings.alerts.uptime.timeout_seconds,
        iap_enabled=settings.config.load_balancer.iap.enabled,
    )


@dataclass
class Run:
    """One stack's recorded registrations."""

    stack: str
    settings: StackSettings
    resources: list[pulumi.runtime.MockResourceArgs]
    attrs: dict[str, Any] = field(default_factory=dict)

    def all(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> pulumi.runtime.MockResourceArgs:
        found = self.all(typ)
        assert len(found) == 1, f"{self.stack}: expected exactly one {typ}, got {[r.name for r in found]}"
        return found[0]

    def policy(self, signal: str) -> pulumi.runtime.MockResourceArgs:
        found = [p for p in self.all(POLICY) if p.inputs.get("userLabels", {}).get("signal") == signal.replace("_", "-")]
        assert len(found) == 1, f"{self.stack}: expected one policy for {signal}, got {[p.name for p in found]}"
        return found[0]

    def condition(self, signal: str) -> dict:
        conditions = self.policy(signal).inputs["conditions"]
        assert len(conditions) == 1
        return conditions[0]["conditionThreshold"]


def run_component(stack: str) -> Run:
    settings = load_stack_settings(stack)
    mocks = RecordingMocks(settings.project)
    pulumi.runtime.set_mocks(mocks, project="print-platform", stack=stack, preview=False)
    run = Run(stack, settings, mocks.resources)

    @pulumi.runtime.test
    def program():
        component = mon.Monitoring("alerting", monitoring_args(settings))
        return pulumi.Output.all(
            [c.name for c in component.channels], sorted(component.policies)).apply(
            lambda v: run.attrs.update(channels=v[0], policy_signals=v[1]))

    program()
    assert run.attrs, "the component's attributes never resolved"
    return run


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> Run:
    return run_component(request.param)


# --------------------------------------------------------------------------- channels


def test_one_email_channel_per_configured_address(run):
    channels = run.all(CHANNEL)
    assert [c.inputs["type"] for c in channels] == ["email"] * len(channels)
    assert [c.inputs["labels"]["email_address"] for c in channels] == \
        run.settings.config.alerting.notification_emails


def test_every_policy_notifies_every_channel(run):
    expected = sorted(run.attrs["channels"])
    assert expected, "no channels"
    for policy in run.all(POLICY):
        assert sorted(policy.inputs["notificationChannels"]) == expected, policy.name


# --------------------------------------------------------------------------- policies


def test_one_policy_per_signal(run):
    policies = run.all(POLICY)
    assert len(policies) == len(mon.SIGNALS)
    assert sorted(p.inputs["userLabels"]["signal"] for p in policies) == sorted(s.replace("_", "-") for s in mon.SIGNALS)
    assert run.attrs["policy_signals"] == sorted(mon.SIGNALS)


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_threshold_duration_window_severity_come_from_alerts_yaml(run, signal):
    spec = run.settings.alerts.alerts[signal]
    policy = run.policy(signal)
    assert policy.inputs["severity"] == spec.severity
    condition = run.condition(signal)
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["thresholdValue"] == spec.threshold
    assert condition["duration"] == f"{spec.duration_seconds}s"
    assert [a["alignmentPeriod"] for a in condition["aggregations"]] == [f"{spec.window_seconds}s"]


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_policy_watches_the_documented_metric(run, signal):
    assert f'metric.type = "{METRICS[signal]}"' in run.condition(signal)["filter"]


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_policy_documentation_has_a_runbook(run, signal):
    policy = run.policy(signal)
    doc = policy.inputs["documentation"]
    assert doc["mimeType"] == "text/markdown"
    assert "### Runbook" in doc["content"]
    assert f"environments/{run.stack}/alerts.yaml" in doc["content"]
    assert doc["subject"].startswith(f"[{run.stack}]")
    assert policy.inputs["combiner"] == "OR"
    assert policy.inputs.get("enabled", True) is not False


def test_5xx_ratio_is_5xx_over_all_requests_of_the_gateway(run):
    condition = run.condition("lb_5xx_ratio")
    numerator, denominator = condition["filter"], condition["denominatorFilter"]
    scope = f'resource.labels.url_map_name = monitoring.regex.full_match("{URL_MAP_REGEX}")'
    assert scope in numerator and scope in denominator
    assert "metric.labels.response_code_class = 500" in numerator
    assert "response_code_class" not in denominator
    assert condition["denominatorAggregations"] == condition["aggregations"]
    assert condition["aggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert condition["aggregations"][0]["crossSeriesReducer"] == "REDUCE_SUM"


def test_latency_is_the_95th_percentile(run):
    condition = run.condition("lb_latency_p95")
    assert f'monitoring.regex.full_match("{URL_MAP_REGEX}")' in condition["filter"]
    [aggregation] = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_DELTA"
    assert aggregation["crossSeriesReducer"] == "REDUCE_PERCENTILE_95"


def test_pubsub_alerts_scope_the_stack_subscriptions(run):
    names = run.settings.names
    assert f'resource.labels.subscription_id = "{names.extractor_subscription}"' in \
        run.condition("pubsub_oldest_unacked")["filter"]
    dead = run.condition("dead_letter")
    assert f'resource.labels.subscription_id = "{names.dead_letter_subscription}"' in dead["filter"]
    assert dead["thresholdValue"] == 0, "any dead-lettered message must alert"


@pytest.mark.parametrize("signal", ["sql_cpu", "sql_memory", "sql_disk"])
def test_cloud_sql_alerts_scope_the_stack_instance(run, signal):
    database_id = f"{run.settings.project}:{run.settings.names.sql_instance}"
    condition = run.condition(signal)
    assert f'resource.labels.database_id = "{database_id}"' in condition["filter"]
    assert 0 < condition["thresholdValue"] <= 1


def test_container_restarts_scope_cluster_and_namespace(run):
    names = run.settings.names
    condition = run.condition("container_restarts")
    assert f'resource.labels.cluster_name = "{names.cluster}"' in condition["filter"]
    assert f'resource.labels.namespace_name = "{names.namespace}"' in condition["filter"]
    [aggregation] = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_DELTA", "restart_count is cumulative: count per window"


# --------------------------------------------------------------------------- uptime


def test_uptime_check_gets_healthz_over_validated_https(run):
    uptime = run.settings.alerts.uptime
    check = run.one(UPTIME)
    http = check.inputs["httpCheck"]
    assert http["requestMethod"] == "GET"
    assert http["path"] == uptime.health_path == "/healthz"
    assert http["port"] == 443
    assert http["useSsl"] is True and http["validateSsl"] is True
    assert check.inputs["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"host": run.settings.config.load_balancer.domain, "project_id": run.settings.project}}
    assert check.inputs["period"] == f"{uptime.period_seconds}s"
    assert check.inputs["timeout"] == f"{uptime.timeout_seconds}s"


def test_uptime_accepted_codes_follow_iap(run):
    codes = run.one(UPTIME).inputs["httpCheck"]["acceptedResponseStatusCodes"]
    values = {c.get("statusValue") for c in codes} - {None}
    assert {c.get("statusClass") for c in codes} - {None} == {"STATUS_CLASS_2XX"}
    if run.settings.config.load_balancer.iap.enabled:
        assert values == {302, 401}
    else:
        assert values == set(), "without IAP only 2xx is healthy"


def test_uptime_alert_watches_this_check(run):
    condition = run.condition("uptime")
    assert f'metric.labels.check_id = "{UPTIME_CHECK_ID}"' in condition["filter"]
    [aggregation] = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_NEXT_OLDER"
    assert aggregation["crossSeriesReducer"] == "REDUCE_COUNT_FALSE"


# --------------------------------------------------------------------------- Args validation


def _valid_kwargs() -> dict:
    spec = mon.AlertSpec(threshold=0.5, duration_seconds=300, severity="ERROR")
    alerts = {s: spec for s in mon.SIGNALS}
    alerts["dead_letter"] = mon.AlertSpec(threshold=0, duration_seconds=0, severity="ERROR")
    alerts["uptime"] = mon.AlertSpec(threshold=1, duration_seconds=60, severity="CRITICAL")
    return dict(
        stack="dev", notification_emails=["ops@example.com"], alerts=alerts, domain="files.example.com",
        url_map_name_regex=URL_MAP_REGEX, extractor_subscription="s", dead_letter_subscription="d",
        sql_database_id="p:i", cluster_name="c", namespace="n", project="p",
    )


def test_valid_args_construct():
    mon.MonitoringArgs(**_valid_kwargs())


@pytest.mark.parametrize("field_name, value, fragment", [
    ("notification_emails", [], "notification_emails"),
    ("notification_emails", "ops@example.com", "notification_emails"),
    ("notification_emails", ["not-an-address"], r"notification_emails\[0\]"),
    ("notification_emails", ["a@example.com", "a@example.com"], "notification_emails"),
    ("domain", "https://files.example.com", "domain"),
    ("health_path", "healthz", "health_path"),
    ("uptime_period_seconds", 30, "uptime_period_seconds"),
    ("uptime_timeout_seconds", 61, "uptime_timeout_seconds"),
    ("stack", "Prod", "stack"),
])
def test_bad_args_name_the_field(field_name, value, fragment):
    kwargs = _valid_kwargs()
    kwargs[field_name] = value
    with pytest.raises(mon.MonitoringArgsError, match=rf"^monitoring: {fragment}: "):
        mon.MonitoringArgs(**kwargs)


def test_missing_and_unknown_signals_are_named():
    kwargs = _valid_kwargs()
    del kwargs["alerts"]["sql_disk"]
    with pytest.raises(mon.MonitoringArgsError, match=r"^monitoring: alerts: missing signals \['sql_disk'\]"):
        mon.MonitoringArgs(**kwargs)
    kwargs = _valid_kwargs()
    kwargs["alerts"]["sql_iops"] = kwargs["alerts"]["sql_cpu"]
    with pytest.raises(mon.MonitoringArgsError, match=r"^monitoring: alerts: unknown signals \['sql_iops'\]"):
        mon.MonitoringArgs(**kwargs)


@pytest.mark.parametrize("signal, spec, fragment", [
    ("lb_5xx_ratio", mon.AlertSpec(5, 300, "ERROR"), "alerts.lb_5xx_ratio.threshold"),
    ("sql_cpu", mon.AlertSpec(0, 300, "ERROR"), "alerts.sql_cpu.threshold"),
    ("dead_letter", mon.AlertSpec(1, 0, "ERROR"), "alerts.dead_letter.threshold"),
    ("uptime", mon.AlertSpec(1.5, 60, "ERROR"), "alerts.uptime.threshold"),
    ("lb_latency_p95", mon.AlertSpec(-1, 60, "ERROR"), "alerts.lb_latency_p95.threshold"),
    ("lb_latency_p95", mon.AlertSpec(1000, 90, "ERROR"), "alerts.lb_latency_p95.duration_seconds"),
    ("lb_latency_p95", mon.AlertSpec(1000, 60, "PAGE"), "alerts.lb_latency_p95.severity"),
    ("lb_latency_p95", mon.AlertSpec(1000, 60, "ERROR", 30), "alerts.lb_latency_p95.window_seconds"),
])
def test_bad_alert_spec_names_signal_and_field(signal, spec, fragment):
    kwargs = _valid_kwargs()
    kwargs["alerts"][signal] = spec
    with pytest.raises(mon.MonitoringArgsError, match=rf"^monitoring: {fragment}: "):
        mon.MonitoringArgs(**kwargs)
