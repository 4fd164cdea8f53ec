"""Alerting (infra/monitoring.py) in the real program, once per real stack file.

The ``run`` fixture (tests/infra/conftest.py) is the program for ``Pulumi.<stack>.yaml``
run under the mock runtime. Assertions read the captured registrations afterwards
(never inside an ``apply``) and compare them with ``Pulumi.<stack>.yaml`` and
``environments/<stack>/alerts.yaml``: a changed threshold, a dropped channel or a
policy scoped to the wrong resource fails a test.
"""
from __future__ import annotations

import re

import pytest

from infra import monitoring as mon
from infra.settings import REPO_ROOT, StackSettings
from tools.mock_runtime import Capture

CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
COMPONENT = "print-platform:monitoring:Monitoring"
GATEWAY = "kubernetes:gateway.networking.k8s.io/v1:Gateway"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
SQL_INSTANCE = "gcp:sql/databaseInstance:DatabaseInstance"
CLUSTER = "gcp:container/cluster:Cluster"

#: The metric each signal must watch (https://cloud.google.com/monitoring/api/metrics_gcp).
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
    "pending_age": "prometheus.googleapis.com/pipeline_pending_oldest_age_seconds/gauge",
}
_URL_MAP_SCOPE = re.compile(r'resource\.labels\.url_map_name = monitoring\.regex\.full_match\("([^"]+)"\)')


def _policy(run: Capture, signal: str):
    found = [p for p in run.of_type(POLICY) if p.inputs.get("userLabels", {}).get("signal") == signal.replace("_", "-")]
    assert len(found) == 1, f"{run.stack}: expected one policy for {signal}, got {[p.name for p in found]}"
    return found[0]


def _condition(run: Capture, signal: str) -> dict:
    conditions = _policy(run, signal).inputs["conditions"]
    assert len(conditions) == 1
    return conditions[0]["conditionThreshold"]


# --------------------------------------------------------------------------- placement + channels


def test_alerting_resources_live_in_the_monitoring_component(run: Capture):
    component = run.one(COMPONENT)
    for typ in (CHANNEL, POLICY, UPTIME):
        assert run.of_type(typ), typ
        assert all(r.parent == component.urn for r in run.of_type(typ)), typ


def test_one_email_channel_per_configured_address(run: Capture, settings: StackSettings):
    channels = run.of_type(CHANNEL)
    # logical names follow the address, so removing one address never renames the others
    assert sorted(c.name for c in channels) == sorted(
        f"email-{a}" for a in settings.config.alerting.notification_emails)
    assert {c.inputs["type"] for c in channels} == {"email"}
    assert sorted(c.inputs["labels"]["email_address"] for c in channels) == \
        sorted(settings.config.alerting.notification_emails)


def test_every_policy_notifies_every_channel(run: Capture):
    channels = run.of_type(CHANNEL)
    for policy in run.of_type(POLICY):
        names = policy.inputs["notificationChannels"]
        assert len(names) == len(set(names)) == len(channels), policy.name
        assert all(isinstance(n, str) and "/notificationChannels/" in n for n in names), names
        assert {c.urn for c in channels} <= set(policy.dependencies), f"{policy.name} misses a channel"


# --------------------------------------------------------------------------- policies


def test_one_policy_per_signal(run: Capture):
    policies = run.of_type(POLICY)
    assert sorted(p.inputs["userLabels"]["signal"] for p in policies) == sorted(s.replace("_", "-") for s in mon.SIGNALS)
    assert set(run.platform.monitoring.policies) == set(mon.SIGNALS)


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_threshold_duration_window_severity_come_from_alerts_yaml(run: Capture, settings: StackSettings, signal: str):
    spec = settings.alerts.alerts[signal]
    assert _policy(run, signal).inputs["severity"] == spec.severity
    condition = _condition(run, signal)
    assert condition["comparison"] == "COMPARISON_GT"
    assert condition["thresholdValue"] == spec.threshold
    assert condition["duration"] == f"{spec.duration_seconds}s"
    assert [a["alignmentPeriod"] for a in condition["aggregations"]] == [f"{spec.window_seconds}s"]


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_policy_watches_the_documented_metric(run: Capture, signal: str):
    assert f'metric.type = "{METRICS[signal]}"' in _condition(run, signal)["filter"]


@pytest.mark.parametrize("signal", mon.SIGNALS)
def test_policy_documentation_has_a_runbook(run: Capture, signal: str):
    policy = _policy(run, signal)
    doc = policy.inputs["documentation"]
    assert doc["mimeType"] == "text/markdown"
    assert "### Runbook" in doc["content"]
    assert f"environments/{run.stack}/alerts.yaml" in doc["content"]
    assert doc["subject"].startswith(f"[{run.stack}]")
    assert policy.inputs["combiner"] == "OR"
    assert policy.inputs.get("enabled", True) is not False


def test_load_balancer_alerts_match_the_gateway_url_map(run: Capture):
    """The regex in the LB filters must match the URL map GKE generates for *this* Gateway."""
    gateway = run.one(GATEWAY)
    name, namespace = gateway.inputs["metadata"]["name"], gateway.inputs["metadata"]["namespace"]
    for signal in ("lb_5xx_ratio", "lb_latency_p95"):
        match = _URL_MAP_SCOPE.search(_condition(run, signal)["filter"])
        assert match, f"{signal} is not scoped to the Gateway's URL map"
        regex = re.compile(match.group(1))
        assert regex.fullmatch(f"gkegw1-x7k2-{namespace}-{name}-5j1mcb4u0ve8"), signal
        assert not regex.fullmatch(f"gkegw1-x7k2-kube-system-{name}-5j1mcb4u0ve8"), signal


def test_5xx_ratio_is_5xx_over_all_requests(run: Capture):
    condition = _condition(run, "lb_5xx_ratio")
    numerator, denominator = condition["filter"], condition["denominatorFilter"]
    assert "metric.labels.response_code_class = 500" in numerator
    assert "response_code_class" not in denominator
    assert numerator.replace(" AND metric.labels.response_code_class = 500", "") == denominator
    assert condition["denominatorAggregations"] == condition["aggregations"]
    assert condition["aggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert condition["aggregations"][0]["crossSeriesReducer"] == "REDUCE_SUM"


def test_latency_is_the_95th_percentile(run: Capture):
    [aggregation] = _condition(run, "lb_latency_p95")["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_DELTA"
    assert aggregation["crossSeriesReducer"] == "REDUCE_PERCENTILE_95"


def _subscription_named(run: Capture, name: str):
    found = [s for s in run.of_type(SUBSCRIPTION) if s.inputs["name"] == name]
    assert len(found) == 1, f"no subscription {name}"
    return found[0]


def test_pubsub_alerts_scope_the_stack_subscriptions(run: Capture, settings: StackSettings):
    names = settings.names
    extractor = _subscription_named(run, names.extractor_subscription)
    dead = _subscription_named(run, names.dead_letter_subscription)
    backlog = _condition(run, "pubsub_oldest_unacked")
    assert f'resource.labels.subscription_id = "{names.extractor_subscription}"' in backlog["filter"]
    assert extractor.urn in _policy(run, "pubsub_oldest_unacked").dependencies
    dead_letter = _condition(run, "dead_letter")
    assert f'resource.labels.subscription_id = "{names.dead_letter_subscription}"' in dead_letter["filter"]
    assert dead.urn in _policy(run, "dead_letter").dependencies
    assert dead_letter["thresholdValue"] == 0, "any dead-lettered message must alert"


@pytest.mark.parametrize("signal", ["sql_cpu", "sql_memory", "sql_disk"])
def test_cloud_sql_alerts_scope_the_stack_instance(run: Capture, settings: StackSettings, signal: str):
    instance = run.one(SQL_INSTANCE)
    database_id = f"{settings.project}:{instance.inputs['name']}"
    condition = _condition(run, signal)
    assert f'resource.labels.database_id = "{database_id}"' in condition["filter"]
    assert 0 < condition["thresholdValue"] <= 1


def test_container_restarts_scope_cluster_and_namespace(run: Capture, settings: StackSettings):
    cluster = run.one(CLUSTER)
    condition = _condition(run, "container_restarts")
    assert f'resource.labels.cluster_name = "{cluster.inputs["name"]}"' in condition["filter"]
    assert f'resource.labels.namespace_name = "{settings.names.namespace}"' in condition["filter"]
    [aggregation] = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_DELTA", "restart_count is cumulative: count per window"


# --------------------------------------------------------------------------- uptime


def test_uptime_check_gets_healthz_over_validated_https(run: Capture, settings: StackSettings):
    uptime = settings.alerts.uptime
    check = run.one(UPTIME)
    http = check.inputs["httpCheck"]
    assert http["requestMethod"] == "GET"
    assert http["path"] == uptime.health_path == "/healthz"
    assert http["port"] == 443
    assert http["useSsl"] is True and http["validateSsl"] is True
    assert check.inputs["monitoredResource"] == {
        "type": "uptime_url",
        "labels": {"host": settings.config.load_balancer.domain, "project_id": settings.project}}
    assert check.inputs["period"] == f"{uptime.period_seconds}s"
    assert check.inputs["timeout"] == f"{uptime.timeout_seconds}s"


def test_uptime_accepted_codes_follow_iap(run: Capture, settings: StackSettings):
    codes = run.one(UPTIME).inputs["httpCheck"]["acceptedResponseStatusCodes"]
    values = {c.get("statusValue") for c in codes} - {None}
    assert {c.get("statusClass") for c in codes} - {None} == {"STATUS_CLASS_2XX"}
    if settings.config.load_balancer.iap.enabled:
        assert values == {302, 401}
    else:
        assert values == set(), "without IAP only 2xx is healthy"


def test_uptime_content_match_follows_iap(run: Capture, settings: StackSettings):
    matchers = run.one(UPTIME).inputs.get("contentMatchers")
    if settings.config.load_balancer.iap.enabled:
        assert not matchers, "behind IAP the probe never sees files-api's body"
    else:
        assert matchers == [{"content": "ok", "matcher": "MATCHES_JSON_PATH",
                             "jsonPathMatcher": {"jsonPath": "$.status", "jsonMatcher": "EXACT_MATCH"}}]


def test_uptime_content_match_is_what_files_api_healthz_answers():
    """The matcher's expectation is the app's real /healthz body (ops blueprint, no dependencies)."""
    from flask import Flask
    from files_api import ops

    app = Flask("healthz-contract")
    app.register_blueprint(ops.bp)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert re.fullmatch(r"\$\.[a-z_]+", mon.HEALTH_JSON_PATH), "only a top-level key is evaluated here"
    assert response.get_json()[mon.HEALTH_JSON_PATH[2:]] == mon.HEALTH_JSON_VALUE


def test_uptime_alert_watches_this_check(run: Capture):
    check = run.one(UPTIME)
    policy = _policy(run, "uptime")
    assert check.urn in policy.dependencies
    condition = _condition(run, "uptime")
    match = re.search(r'metric\.labels\.check_id = "([^"]*)"', condition["filter"])
    assert match and match.group(1) not in ("", "None"), condition["filter"]
    [aggregation] = condition["aggregations"]
    assert aggregation["perSeriesAligner"] == "ALIGN_NEXT_OLDER"
    assert aggregation["crossSeriesReducer"] == "REDUCE_COUNT_FALSE"


# --------------------------------------------------------------------------- config and context validation


def _valid_context() -> dict:
    return dict(
        stack="dev", domain="files.example.com",
        url_map_name_regex="gkegw1-[a-z0-9]+-n-external-[a-z0-9]+", extractor_subscription="s", dead_letter_subscription="d",
        sql_database_id="p:i", cluster_name="c", namespace="n", project="p",
    )


def test_valid_context_constructs():
    mon.MonitoringContext(**_valid_context())


def test_bad_context_names_the_field():
    with pytest.raises(mon.MonitoringArgsError, match=r"^monitoring: stack: "):
        mon.MonitoringContext(**{**_valid_context(), "stack": "Prod"})


def _key_problems(model, document) -> list[str]:
    """The report lines of validating ``document`` with ``model`` (file shown as ``f``)."""
    from pydantic import ValidationError

    from infra.config import problems

    with pytest.raises(ValidationError) as info:
        model.model_validate(document)
    return problems(info.value, "f", model)


@pytest.mark.parametrize("emails, key", [
    ([], "notificationEmails"),
    ("ops@example.com", "notificationEmails"),
    (["not-an-address"], "notificationEmails"),
    (["a@example.com", "a@example.com"], "notificationEmails"),
    (["Ops <ops@example.com>"], "notificationEmails"),
])
def test_bad_notification_emails_name_the_key(emails, key):
    [line] = _key_problems(mon.AlertingConfig, {"notificationEmails": emails})
    assert line.startswith(f"f: {key}: "), line


@pytest.mark.parametrize("changes, key", [
    ({"healthPath": "healthz"}, "uptime.healthPath"),
    ({"periodSeconds": 30}, "uptime.periodSeconds"),
    ({"timeoutSeconds": 61}, "uptime.timeoutSeconds"),
])
def test_bad_uptime_check_names_the_key(changes, key):
    [line] = _key_problems(mon.AlertsConfig, {**_alerts_document("sql_cpu"), "uptime": changes})
    assert line.startswith(f"f: {key}: "), line


def test_missing_and_unknown_signals_are_named():
    document = _alerts_document("sql_cpu")
    del document["alerts"]["sql_disk"]
    document["alerts"]["sql_iops"] = document["alerts"]["sql_cpu"]
    assert _key_problems(mon.AlertsConfig, document) == [
        f"f: alerts: missing signal(s) ['sql_disk'] (need {list(mon.SIGNALS)})",
        f"f: alerts: unknown signal(s) ['sql_iops'] (need {list(mon.SIGNALS)})",
    ]


def _alerts_document(signal: str, **changes) -> dict:
    """A valid ``alerts.yaml`` document (the spec's field names) with ``changes`` applied to ``signal``."""
    document = {"alerts": {s: {"threshold": 0.5, "durationSeconds": 300, "severity": "ERROR"} for s in mon.SIGNALS}}
    document["alerts"]["dead_letter"]["threshold"] = 0
    document["alerts"]["uptime"]["threshold"] = 1
    document["alerts"][signal].update(changes)
    return document


@pytest.mark.parametrize("signal, changes, key", [
    ("lb_5xx_ratio", {"threshold": 5}, "alerts.lb_5xx_ratio.threshold"),
    ("sql_cpu", {"threshold": 0}, "alerts.sql_cpu.threshold"),
    ("dead_letter", {"threshold": 1}, "alerts.dead_letter.threshold"),
    ("uptime", {"threshold": 1.5}, "alerts.uptime.threshold"),
    ("lb_latency_p95", {"threshold": -1}, "alerts.lb_latency_p95.threshold"),
    ("lb_latency_p95", {"durationSeconds": 90}, "alerts.lb_latency_p95.durationSeconds"),
    ("lb_latency_p95", {"severity": "PAGE"}, "alerts.lb_latency_p95.severity"),
    ("lb_latency_p95", {"windowSeconds": 30}, "alerts.lb_latency_p95.windowSeconds"),
])
def test_bad_alert_spec_names_signal_and_field(signal, changes, key):
    """The alert model (infra/monitoring.py) rejects the value; the report names the key."""
    from pydantic import ValidationError

    from infra.config import problems

    with pytest.raises(ValidationError) as info:
        mon.AlertsConfig.model_validate(_alerts_document(signal, **changes))
    lines = problems(info.value, "alerts.yaml", mon.AlertsConfig)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"alerts.yaml: {key}: "), lines



def test_edge_alerts_wait_for_the_releases(run: Capture):
    """A fresh bring-up does not page while the certificate and the services come up: the
    uptime check and the uptime / 5xx policies are created after both Helm releases; the
    other policies do not wait."""
    from infra.monitoring import EDGE_SIGNALS

    releases = {r.urn for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert len(releases) == 2
    check = run.one("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
    assert releases <= set(check.dependencies)
    assert set(EDGE_SIGNALS) == {"uptime", "lb_5xx_ratio"}
    for policy in run.of_type("gcp:monitoring/alertPolicy:AlertPolicy"):
        waits = releases <= set(policy.dependencies)
        assert waits == (policy.name in ("uptime", "lb-5xx-ratio")), policy.name


# --------------------------------------------------------------------------- reconciliation


def test_pending_age_watches_the_extractors_backlog_gauge_at_the_stacks_bound(run: Capture, settings: StackSettings):
    from extractor.backlog import BacklogCollector  # the gauge's name is the app's

    condition = _condition(run, "pending_age")
    assert 'resource.type = "prometheus_target"' in condition["filter"]
    assert f'resource.labels.namespace = "{settings.names.namespace}"' in condition["filter"]
    assert [a["crossSeriesReducer"] for a in condition["aggregations"]] == ["REDUCE_MAX"]  # every replica reports it
    assert condition["thresholdValue"] >= settings.config.reconcile.pending_bound_seconds
    import inspect

    assert '"pipeline_pending_oldest_age_seconds"' in inspect.getsource(BacklogCollector)


def test_log_metrics_count_the_reconciler_and_sweep_lines(run: Capture, settings: StackSettings):
    import inspect

    from extractor import reconcile
    from files_api import sweep

    metrics = run.of_type("gcp:logging/metric:Metric")
    assert sorted(m.inputs["name"] for m in metrics) == sorted(f"{run.stack}-{n}" for n in mon.LOG_METRICS)
    sources = inspect.getsource(reconcile) + inspect.getsource(sweep)
    for metric in metrics:
        message = mon.LOG_METRICS[metric.inputs["name"].removeprefix(f"{run.stack}-")][0]
        assert f'"{message}"' in sources, f"no log line {message!r} in the reconciler or the sweep"
        assert f'jsonPayload.message = "{message}"' in metric.inputs["filter"]
        assert f'resource.labels.namespace_name = "{settings.names.namespace}"' in metric.inputs["filter"]
        assert metric.inputs["metricDescriptor"]["metricKind"] == "DELTA"
        assert metric.inputs["metricDescriptor"]["valueType"] == "INT64"


def test_a_pending_alert_below_the_first_redrive_is_rejected(tmp_path):
    import shutil

    import yaml

    from infra.settings import ConfigError, load_stack_settings

    root = tmp_path
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", root / "Pulumi.dev.yaml")
    (root / "environments" / "dev").mkdir(parents=True)
    alerts = yaml.safe_load((REPO_ROOT / "environments" / "dev" / "alerts.yaml").read_text())
    alerts["alerts"]["pending_age"]["threshold"] = 30
    (root / "environments" / "dev" / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    with pytest.raises(ConfigError, match=r"alerts.pending_age.threshold: 30 s is below print-platform:reconcile"):
        load_stack_settings("dev", root=root)
