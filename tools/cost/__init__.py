"""Monthly cost estimate of a stack from its offline plan (``make cost``, the cost section of ``make preview-diff``).

- :mod:`tools.cost.prices`: the dated, sourced price table ``environments/prices.yaml``;
- :mod:`tools.cost.usage`: the usage assumptions ``environments/<stack>/usage.yaml``;
- :mod:`tools.cost.estimate`: plan x prices x usage -> :class:`~tools.cost.estimate.Estimate`;
- ``python -m tools.cost``: the command line.

How it is computed and what it leaves out: docs/cost.md.
"""
from __future__ import annotations

from decimal import Decimal

from tools.cost.estimate import Estimate


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def _quantity(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{float(value):,.4g}" if abs(value) < 1000 else f"{float(value):,.1f}"


def _price(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def render_text(result: Estimate) -> str:
    """The estimate as text: one block per priced resource (type, name, its dimensions), then the total."""
    lines = [f"Monthly cost estimate: stack {result.stack} ({result.region}), {result.currency}, "
             f"prices as of {result.prices_as_of}", ""]
    for item in result.items:
        lines.append(f"{item.type}  {item.name}" + " " * 2 + f"{result.currency} {_amount(item.monthly)}")
        for line in item.lines:
            lines.append(f"    {line.dimension}: {_quantity(line.quantity)} {line.unit} x {_price(line.unit_price)}"
                         f" = {_amount(line.monthly)}")
        if item.note:
            lines.append(f"    ({item.note})")
    lines.append("")
    free = sum(count for count, _ in result.free.values())
    lines.append(f"Free ({free} resources): " + ", ".join(f"{t} x{c}" for t, (c, _) in sorted(result.free.items())))
    if result.unpriced:
        lines.append("UNPRICED: " + ", ".join(f"{t} {n!r}" for t, n in result.unpriced))
    lines.append("")
    budget = f" (budget {result.currency} {result.budget_usd})" if result.budget_usd is not None else " (no budget configured)"
    lines.append(f"Total: {result.currency} {_amount(result.total_monthly)} per month{budget}")
    for warning in result.warnings:
        lines.append(f"WARNING: {warning}")
    return "\n".join(lines) + "\n"
