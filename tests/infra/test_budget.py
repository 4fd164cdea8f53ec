"""The stack's Cloud Billing budget (infra/budget.py): what the program registers, and the config it takes."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from infra import budget as billing
from infra.settings import ConfigError, read_stack_file
from tools.mock_runtime import STACK_TYPE, run_stack

BUDGET = "gcp:billing/budget:Budget"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"


def _run_with(stack: str, mutate: Callable[[dict[str, Any]], None]):
    config, _ = read_stack_file(stack)
    config = copy.deepcopy(config)
    mutate(config)
    return run_stack(stack, config_override=config)


def test_one_budget_per_stack_with_the_configured_amount_and_account(run, settings):
    budget = run.one(BUDGET)
    config = settings.config.budget
    assert config is not None, "both committed stacks configure a budget"
    inputs = budget.inputs
    assert inputs["billingAccount"] == config.billing_account
    assert inputs["amount"] == {"specifiedAmount": {"currencyCode": "USD", "units": str(config.amount_usd)}}
    assert inputs["displayName"] == f"print-platform-{settings.stack}"


def test_budget_counts_only_the_stacks_project_by_number_each_month(run):
    budget_filter = run.one(BUDGET).inputs["budgetFilter"]
    # projects/<number> (the API's form), the mocked getProject's number, not the id.
    (project,) = budget_filter["projects"]
    assert project.startswith("projects/") and project.removeprefix("projects/").isdigit(), project
    assert budget_filter["calendarPeriod"] == "MONTH"
    assert budget_filter["creditTypesTreatment"] == "INCLUDE_ALL_CREDITS"


def test_thresholds_at_50_90_100_percent_of_current_spend(run):
    rules = run.one(BUDGET).inputs["thresholdRules"]
    assert [(r["thresholdPercent"], r["spendBasis"]) for r in rules] == [
        (0.5, "CURRENT_SPEND"), (0.9, "CURRENT_SPEND"), (1, "CURRENT_SPEND")]


def test_alerts_go_to_the_stacks_notification_channels(run, settings):
    rule = run.one(BUDGET).inputs["allUpdatesRule"]
    channels = rule["monitoringNotificationChannels"]
    assert len(channels) == len(settings.config.alerting.notification_emails) == len(run.of_type(CHANNEL))
    assert all(c.startswith(f"projects/{settings.project}/notificationChannels/") for c in channels)
    assert rule["disableDefaultIamRecipients"] is False
    budget = run.one(BUDGET)
    for channel in run.of_type(CHANNEL):
        assert channel.urn in budget.dependencies


def test_budget_is_a_child_of_its_component(run):
    budget = run.one(BUDGET)
    component = run.one("print-platform:budget:Budget")
    assert budget.parent == component.urn


def test_no_budget_config_no_budget():
    capture = _run_with("dev", lambda c: c.pop("print-platform:budget"))
    assert capture.error is None
    assert capture.of_type(BUDGET) == []


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    [
        (lambda c: c["print-platform:budget"].update(billingAccount="01a2b3-c4d5e6-f7a8b9"),
         "print-platform:budget.billingAccount", "billing account id"),
        (lambda c: c["print-platform:budget"].update(billingAccount="billingAccounts/01A2B3-C4D5E6-F7A8B9"),
         "print-platform:budget.billingAccount", "billing account id"),
        (lambda c: c["print-platform:budget"].update(amountUsd=0),
         "print-platform:budget.amountUsd", "greater than or equal to 1"),
        (lambda c: c["print-platform:budget"].update(amountUsd=12.5),
         "print-platform:budget.amountUsd", "integer"),
        (lambda c: c["print-platform:budget"].pop("billingAccount"),
         "print-platform:budget.billingAccount", "missing"),
        (lambda c: c["print-platform:budget"].update(thresholds=[0.5]),
         "print-platform:budget.thresholds", "unknown key"),
        (lambda c: c["print-platform:alerting"].update(notificationEmails=[f"a{i}@example.com" for i in range(6)]),
         "print-platform:alerting.notificationEmails", "at most 5"),
    ],
    ids=["lower-case", "resource-name", "zero", "fraction", "missing-account", "unknown-key", "six-channels"],
)
def test_bad_budget_config_fails_before_any_resource(mutate, key, fragment):
    capture = _run_with("dev", mutate)
    assert isinstance(capture.error, ConfigError), repr(capture.error)
    message = str(capture.error)
    assert message.startswith(f"Pulumi.dev.yaml: {key}: "), message
    assert fragment in message, message
    assert [r.urn for r in capture.registrations if r.type != STACK_TYPE] == []


@pytest.mark.parametrize(
    ("changes", "field_name"),
    [
        ({"billingAccount": "0000-0000"}, "billingAccount"),
        ({"amountUsd": 0}, "amountUsd"),
        ({"amountUsd": True}, "amountUsd"),
    ],
)
def test_budget_config_rejects_malformed_values(changes, field_name):
    """The budget model (infra/budget.py) is the component's config: it refuses the value, naming the key."""
    from pydantic import ValidationError

    config = {"billingAccount": "01A2B3-C4D5E6-F7A8B9", "amountUsd": 150}
    config.update(changes)
    with pytest.raises(ValidationError) as info:
        billing.BudgetConfig.model_validate(config)
    assert [e["loc"] for e in info.value.errors()] == [(field_name,)]


@pytest.mark.parametrize("channels", [[], [f"c{i}" for i in range(6)]], ids=["none", "six"])
def test_budget_context_rejects_a_channel_count_the_api_refuses(channels):
    with pytest.raises(billing.BudgetArgsError, match="^budget: notification_channels: "):
        billing.BudgetContext(stack="dev", project="print-platform-dev", notification_channels=channels)
