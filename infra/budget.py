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

#: Alert thresholds as fractions of the budget (1.0 = 100 %), on the current spend.
THRESHOLDS: tuple[float, ...] = (0.5, 0.9, 1.0)
#: The Budget API accepts at most 5 Cloud Monitoring notification channels per budget.
MAX_CHANNELS = 5
#: ``XXXXXX-XXXXXX-XXXXXX`` (also checked by infra/settings.py, where it comes from).
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")


class BudgetArgsError(ValueError):
    """A malformed :class:`BudgetArgs` value; the message names the field and the value."""


def _check(condition: bool, field_name: str, message: str) -> None:
    if not condition:
        raise BudgetArgsError(f"budget: {field_name}: {message}")


@dataclass(frozen=True)
class BudgetArgs:
    """Inputs of :class:`Budget`.

    Attributes:
        stack: stack name (the budget's display name is ``print-platform-<stack>``).
        project: the stack's project id; its number is looked up for the filter.
        billing_account: billing account id ``XXXXXX-XXXXXX-XXXXXX``.
        amount_usd: the monthly budget, whole US dollars (>= 1).
        notification_channels: Cloud Monitoring notification channel names
            (``projects/<p>/notificationChannels/<id>``), 1..:data:`MAX_CHANNELS`.

    Raises:
        BudgetArgsError: on construction, for a malformed value.
    """

    stack: str
    project: pulumi.Input[str]
    billing_account: str
    amount_usd: int
    notification_channels: Sequence[pulumi.Input[str]]

    def __post_init__(self) -> None:
        _check(isinstance(self.billing_account, str) and bool(_BILLING_ACCOUNT.match(self.billing_account)),
               "billing_account", f"not a billing account id XXXXXX-XXXXXX-XXXXXX: {self.billing_account!r}")
        _check(isinstance(self.amount_usd, int) and not isinstance(self.amount_usd, bool) and self.amount_usd >= 1,
               "amount_usd", f"must be a whole number of dollars >= 1, got {self.amount_usd!r}")
        _check(1 <= len(self.notification_channels) <= MAX_CHANNELS, "notification_channels",
               f"the Budget API takes 1..{MAX_CHANNELS} channels, got {len(self.notification_channels)}")


class Budget(pulumi.ComponentResource):
    """The stack's monthly Cloud Billing budget.

    Attributes:
        budget: the ``gcp.billing.Budget``.
        budget_name: its resource name (``billingAccounts/<id>/budgets/<id>``), an Output.
    """

    def __init__(self, name: str, args: BudgetArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("print-platform:budget:Budget", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        project_number = gcp.organizations.get_project_output(project_id=args.project).number
        self.budget = gcp.billing.Budget(
            "monthly",
            billing_account=args.billing_account,
            display_name=f"print-platform-{args.stack}",
            budget_filter=gcp.billing.BudgetBudgetFilterArgs(
                projects=[project_number.apply(lambda n: f"projects/{n}")],
                calendar_period="MONTH",
                credit_types_treatment="INCLUDE_ALL_CREDITS",
            ),
            amount=gcp.billing.BudgetAmountArgs(
                specified_amount=gcp.billing.BudgetAmountSpecifiedAmountArgs(
                    currency_code="USD", units=str(args.amount_usd)),
            ),
            threshold_rules=[
                gcp.billing.BudgetThresholdRuleArgs(threshold_percent=t, spend_basis="CURRENT_SPEND")
                for t in THRESHOLDS
            ],
            all_updates_rule=gcp.billing.BudgetAllUpdatesRuleArgs(
                monitoring_notification_channels=list(args.notification_channels),
                disable_default_iam_recipients=False,
            ),
            opts=child,
        )
        self.budget_name = self.budget.name
        self.register_outputs({"budget": self.budget_name})
