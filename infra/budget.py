"""The stack's Cloud Billing budget: a monthly amount for the stack's project, alerting at 50/90/100 %.

One ``gcp.billing.Budget`` on the billing account (stack config
``print-platform:budget.billingAccount``), filtered to the stack's project
(``projects/<project number>``, the form the Budget API takes:
https://cloud.google.com/billing/docs/reference/budget/rest/v1/billingAccounts.budgets#Filter),
for each calendar month, with:

- ``amount.specifiedAmount``: ``print-platform:budget.amountUsd`` whole US
  dollars (``currencyCode: USD``: the API rejects a currency other than the
  billing account's, so a non-USD account fails loudly instead of reading the
  number in another currency);
- ``thresholdRules`` at :data:`THRESHOLDS` of the current spend;
- ``allUpdatesRule.monitoringNotificationChannels``: the stack's e-mail
  notification channels (infra/monitoring.py; the API takes at most
  :data:`MAX_CHANNELS`), and the billing account's administrators keep their
  default e-mails.

Credits (the GKE free tier, promotions) are subtracted before the thresholds
(``creditTypesTreatment: INCLUDE_ALL_CREDITS``), as the cost estimate does
(docs/cost.md). A budget alerts; it does not cap spending.

Provider arguments checked against pulumi-gcp ``billing.Budget``
(terraform-provider-google ``google_billing_budget``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_gcp as gcp
from pydantic import Field, field_validator

from infra.config import ConfigModel, not_bool

#: Alert thresholds as fractions of the budget (1.0 = 100 %), on the current spend.
THRESHOLDS: tuple[float, ...] = (0.5, 0.9, 1.0)
#: The Budget API accepts at most 5 Cloud Monitoring notification channels per budget.
MAX_CHANNELS = 5


class BudgetArgsError(ValueError):
    """A malformed :class:`BudgetContext` value; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise BudgetArgsError(f"budget: {field_name}: {message}")


#: A Cloud Billing account id: three groups of six upper-case hex digits
#: (https://cloud.google.com/billing/docs/how-to/find-billing-account-id).
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")


class BudgetConfig(ConfigModel):
    """``print-platform:budget``, the inputs of :class:`Budget`: the stack's monthly Cloud Billing budget.

    Attributes:
        billing_account: the billing account id ``XXXXXX-XXXXXX-XXXXXX`` (upper-case
            hex) that pays for the stack's project; the budget is created on it.
        amount_usd: monthly budget in US dollars, a whole number 1..1,000,000; alerts
            go to the stack's notification channels at 50, 90 and 100 % of it, and
            ``make cost`` / ``make preview`` warn when the estimate exceeds it.
    """

    billing_account: str = Field(description="`XXXXXX-XXXXXX-XXXXXX`, upper-case hex")
    amount_usd: int = Field(ge=1, le=1_000_000)

    _not_bool = field_validator("amount_usd", mode="before")(not_bool)

    @field_validator("billing_account")
    @classmethod
    def _billing_account(cls, v: str) -> str:
        if not _BILLING_ACCOUNT.match(v):
            raise ValueError(f"{v!r} is not a billing account id like '01A2B3-C4D5E6-F7A8B9' (upper-case hex)")
        return v


@dataclass(frozen=True)
class BudgetContext:
    """What :class:`Budget` takes besides its :class:`BudgetConfig`.

    Attributes:
        stack: stack name (the budget's display name is ``print-platform-<stack>``).
        project: the stack's project id; its number is looked up for the filter.
        notification_channels: Cloud Monitoring notification channel names
            (``projects/<p>/notificationChannels/<id>``), 1..:data:`MAX_CHANNELS`.

    Raises:
        BudgetArgsError: on construction, for a channel count the Budget API refuses.
    """

    stack: str
    project: pulumi.Input[str]
    notification_channels: Sequence[pulumi.Input[str]]

    def __post_init__(self) -> None:
        _check(1 <= len(self.notification_channels) <= MAX_CHANNELS, "notification_channels",
               f"the Budget API takes 1..{MAX_CHANNELS} channels, got {len(self.notification_channels)}")


class Budget(pulumi.ComponentResource):
    """The stack's monthly Cloud Billing budget.

    Attributes:
        budget: the ``gcp.billing.Budget``.
        budget_name: its resource name (``billingAccounts/<id>/budgets/<id>``), an Output.
    """

    def __init__(self, name: str, config: BudgetConfig, context: BudgetContext, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:budget:Budget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project_number = gcp.organizations.get_project_output(project_id=context.project).number
        self.budget = gcp.billing.Budget(
            "monthly",
            billing_account=config.billing_account,
            display_name=f"print-platform-{context.stack}",
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                projects=[project_number.apply(lambda n: f"projects/{n}")],
                calendar_period="MONTH",
                credit_types_treatment="INCLUDE_ALL_CREDITS",
            ),
            amount=gcp.billing.BudgetAmountArgs(
                specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                    currency_code="USD", units=str(config.amount_usd)),
            ),
            threshold_rules=[
                gcp.billing.BudgetThresholdRuleArgs(threshold_percent=t, spend_basis="CURRENT_SPEND")
                for t in THRESHOLDS
            ],
            all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
                monitoring_notification_channels=list(context.notification_channels),
                disable_default_iam_recipients=False,
            ),
            opts=child,
        )
        self.budget_name = self.budget.name
        self.register_outputs({"budget": self.budget_name})
