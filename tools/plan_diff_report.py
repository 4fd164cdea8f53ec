"""Markdown report of a stack's plan diff, for a pull-request comment and a job summary.

Layout per stack (GitHub-flavoured Markdown, deterministic for equal input):

1. a hidden marker ``<!-- preview-diff:stack=<stack> -->`` (the comment job
   updates the comment that carries it) and a heading with ``+N ~M -K``;
2. where the two sides come from, and any notes (a side that could not render);
3. a warning callout listing changes to protected or stateful resources;
4. a table of the resource changes and, per change, a ``<details>`` block with
   its property diff (``~ path: old -> new``, ``+ path: new``, ``- path: old``);
5. the changed stack outputs (in a ``<details>`` block);
6. the Helm releases: per release whether its rendered manifests changed, and
   a ``<details>`` block with their unified diff;
7. the monthly cost estimate (tools/cost, docs/cost.md): the total before and
   after, the priced lines that changed, and a warning when the head's estimate
   exceeds the stack's budget;
8. the summary line ``**Summary (<stack>): +N ~M -K**``, or "No changes".
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

from tools.plan_diff import SECRET, PropertyChange, ResourceChange, StackDiff
from tools.plan_diff_manifests import ManifestDiff

MARKER_TEMPLATE = "<!-- preview-diff:stack={stack} -->"
"""Hidden marker of a stack's report; the comment workflow finds its comment by it."""

OP_SYMBOL = {"create": "+", "update": "~", "delete": "-"}
MAX_VALUE_CHARS = 2000
"""A longer rendered value is cut (the full value is in the preview JSON)."""
MAX_PATHS_IN_TABLE = 4


def marker(stack: str) -> str:
    """The hidden marker line of `stack`'s report."""
    return MARKER_TEMPLATE.format(stack=stack)


def format_value(value: Any, secret: bool = False) -> str:
    """One value as compact JSON (keys sorted); ``[secret]`` when masked; cut at MAX_VALUE_CHARS."""
    if secret:
        return SECRET
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > MAX_VALUE_CHARS:
        text = text[:MAX_VALUE_CHARS] + f"… ({len(text)} chars)"
    return text


def format_property(change: PropertyChange) -> str:
    """One line of a property diff: ``~ path: old -> new``, ``+ path: new`` or ``- path: old``."""
    path = change.path or "(inputs)"
    if change.kind == "add":
        return f"+ {path}: {format_value(change.new, change.secret)}"
    if change.kind == "remove":
        return f"- {path}: {format_value(change.old, change.secret)}"
    return f"~ {path}: {format_value(change.old, change.secret)} -> {format_value(change.new, change.secret)}"


def code(text: str) -> str:
    """An inline code span that survives backticks and table pipes in `text`."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def fenced(lines: Sequence[str], language: str = "diff") -> list[str]:
    """A fenced code block whose fence is longer than any backtick run inside."""
    longest = max((len(run) for line in lines for run in re.findall(r"`{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{language}", *lines, fence]


def _reasons(change: ResourceChange) -> str:
    return ", ".join(r for r, on in (("protected", change.protected), ("stateful", change.stateful)) if on)


def _paths_cell(change: ResourceChange) -> str:
    if change.op != "update":
        return f"{len(change.properties)} inputs" if change.properties else "no inputs"
    paths = [code(p.path) for p in change.properties[:MAX_PATHS_IN_TABLE]]
    more = len(change.properties) - MAX_PATHS_IN_TABLE
    return ", ".join(paths) + (f" … (+{more} more)" if more > 0 else "")


def _attention(diff: StackDiff) -> list[str]:
    if not diff.attention:
        return []
    lines = ["> [!WARNING]", "> **Protected or stateful resources change:**"]
    for change in diff.attention:
        what = ", ".join(code(p.path) for p in change.properties[:8]) if change.op == "update" else ""
        more = len(change.properties) - 8 if change.op == "update" else 0
        lines.append(
            f"> - **{change.op}** {code(change.name)} ({code(change.type)}; {_reasons(change)})"
            + (f": {what}" if what else "")
            + (f" … (+{more} more)" if more > 0 else "")
        )
    return lines + [""]


def _resource_section(diff: StackDiff) -> list[str]:
    if not diff.changes:
        return []
    lines = ["### Resources", "", "| | resource | type | properties |", "| --- | --- | --- | --- |"]
    for change in diff.changes:
        flag = " ⚠️" if change.needs_attention else ""
        lines.append(
            f"| {OP_SYMBOL[change.op]} {change.op}{flag} | {code(change.name)} | {code(change.type)} | {_paths_cell(change)} |"
        )
    lines.append("")
    for change in diff.changes:
        if not change.properties:
            continue
        count = len(change.properties)
        noun = "property" if count == 1 else "properties"
        lines += [
            "<details>",
            f"<summary>{OP_SYMBOL[change.op]} {change.op} <code>{_html(change.urn)}</code> ({count} {noun})</summary>",
            "",
            *fenced([format_property(p) for p in change.properties]),
            "",
            "</details>",
            "",
        ]
    return lines


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _outputs_section(diff: StackDiff) -> list[str]:
    if not diff.outputs:
        return []
    count = len(diff.outputs)
    return [
        "### Stack outputs",
        "",
        "<details>",
        f"<summary>{count} stack output{'s' if count != 1 else ''} changed</summary>",
        "",
        *fenced([format_property(p) for p in diff.outputs]),
        "",
        "</details>",
        "",
    ]


def _manifest_section(manifests: Sequence[ManifestDiff] | None, max_lines: int) -> list[str]:
    if manifests is None:
        return []
    lines = ["### Helm releases: rendered manifests", ""]
    if not manifests:
        return lines + ["No rendered Helm releases at either side.", ""]
    for item in manifests:
        if item.status == "unchanged":
            lines.append(f"- {code(item.release)}: unchanged")
        else:
            lines.append(f"- {code(item.release)}: {item.status} (+{item.added} -{item.removed} lines)")
    lines.append("")
    for item in manifests:
        if item.status == "unchanged":
            continue
        shown = list(item.lines[:max_lines])
        if len(item.lines) > max_lines:
            shown.append(f"... {len(item.lines) - max_lines} more diff lines cut; the full diff is in the artifact")
        lines += [
            "<details>",
            f"<summary>{_html(item.release)}: manifest diff (+{item.added} -{item.removed})</summary>",
            "",
            *fenced(shown),
            "",
            "</details>",
            "",
        ]
    return lines


CostDocument = dict[str, Any]


def _cost_lines(document: CostDocument) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``{(type, name, dimension): dimension}`` of a cost document's items."""
    lines: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in document.get("items") or []:
        for dim in item.get("dimensions") or []:
            lines[(str(item.get("type")), str(item.get("name")), str(dim.get("dimension")))] = dim
    return lines


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def _delta(value: float) -> str:
    return ("+" if value > 0 else "−" if value < 0 else "±") + f"{abs(value):,.2f}"


def _quantity(dim: dict[str, Any] | None) -> str:
    if dim is None:
        return "—"
    quantity = dim.get("quantity")
    shown = f"{quantity:,}" if isinstance(quantity, int) else f"{quantity:,.4g}"
    return f"{shown} {dim.get('unit', '')}".strip()


def cost_section(base: CostDocument | None, head: CostDocument | None) -> list[str]:
    """The cost section: totals before/after and the changed priced lines (Markdown lines).

    base/head: the estimate documents of each side (``python -m tools.cost --format
    json``), None when a side has none (it predates the estimate, or it failed; the
    notes say which). Empty when neither side has one.
    """
    if base is None and head is None:
        return []
    currency = (head or base or {}).get("currency", "USD")
    lines = ["### Monthly cost estimate", ""]
    if head is None:
        return lines + [f"No estimate for the head; the base's was {currency} {_usd(base['total_monthly'])} a month.", ""]
    head_total = float(head.get("total_monthly", 0))
    budget = head.get("budget_monthly")
    budget_cell = f"{currency} {budget}" if budget is not None else "none configured"
    if base is None:
        lines += [f"Head: **{currency} {_usd(head_total)} a month** (prices as of {head.get('prices_as_of')}; "
                  f"budget {budget_cell}). The base has no estimate to compare with.", ""]
        changed: list[tuple[tuple[str, str, str], dict | None, dict | None]] = []
    else:
        base_total = float(base.get("total_monthly", 0))
        lines += [
            f"| {currency} per month | base | head | change |",
            "| --- | ---: | ---: | ---: |",
            f"| **total** | {_usd(base_total)} | {_usd(head_total)} | **{_delta(head_total - base_total)}** |",
            "",
            f"Prices as of {head.get('prices_as_of')} (environments/prices.yaml); usage assumptions: "
            f"environments/{head.get('stack')}/usage.yaml; budget {budget_cell}.",
            "",
        ]
        before, after = _cost_lines(base), _cost_lines(head)
        changed = [(key, before.get(key), after.get(key)) for key in sorted(set(before) | set(after))
                   if (before.get(key) or {}).get("monthly") != (after.get(key) or {}).get("monthly")
                   or (before.get(key) or {}).get("quantity") != (after.get(key) or {}).get("quantity")]
        if changed:
            lines += ["| resource | dimension | quantity base → head | base | head | change |",
                      "| --- | --- | --- | ---: | ---: | ---: |"]
            for (type_token, name, dimension), old, new in changed:
                old_usd = float((old or {}).get("monthly", 0))
                new_usd = float((new or {}).get("monthly", 0))
                lines.append(
                    f"| {code(name)} ({code(type_token)}) | {dimension} | {_quantity(old)} → {_quantity(new)} "
                    f"| {_usd(old_usd) if old else '—'} | {_usd(new_usd) if new else '—'} | {_delta(new_usd - old_usd)} |")
            lines.append("")
        else:
            lines += ["No priced line changed.", ""]
    warnings = list(head.get("warnings") or [])
    if warnings:
        lines += ["> [!WARNING]", *[f"> - {w}" for w in warnings], ""]
    return lines


def manifests_changed(manifests: Sequence[ManifestDiff] | None) -> int:
    """How many releases' rendered manifests differ (0 when not compared)."""
    return sum(1 for m in manifests or () if m.status != "unchanged")


def render_report(
    diff: StackDiff,
    *,
    base_label: str,
    head_label: str,
    manifests: Sequence[ManifestDiff] | None = None,
    notes: Sequence[str] = (),
    max_diff_lines: int = 400,
    cost: tuple[CostDocument | None, CostDocument | None] | None = None,
) -> str:
    """The Markdown report of one stack (ends with a newline).

    base_label / head_label: where each side comes from (e.g. "`origin/main`
    at `1a2b3c4`"), Markdown. manifests: per-release manifest diffs, or None
    when they could not be compared (say why in `notes`). max_diff_lines:
    manifest diff lines shown per release before cutting. cost: (base, head)
    cost estimate documents (either None when that side has none); None leaves
    the cost section out.
    """
    changed_releases = manifests_changed(manifests)
    lines = [
        marker(diff.stack),
        f"## Preview diff: {code(diff.stack)} {diff.summary}",
        "",
        f"Base: {base_label} · head: {head_label}. Offline preview under Pulumi mocks "
        "(no credentials, no cloud state): updates that force a replacement are shown as updates.",
        "",
    ]
    lines += [f"> [!NOTE]\n> {note}\n" for note in notes]
    lines += _attention(diff)
    if not diff.changes and not changed_releases and not diff.outputs:
        lines += [f"**No changes.** {diff.unchanged} resources unchanged"
                  + (f"; the rendered manifests of {len(manifests)} Helm releases are identical." if manifests else "."), ""]
    lines += _resource_section(diff)
    lines += _outputs_section(diff)
    lines += _manifest_section(manifests, max_diff_lines)
    if cost is not None:
        lines += cost_section(*cost)
    tail = f"{diff.unchanged} unchanged"
    if changed_releases:
        tail += f"; rendered manifests of {changed_releases} Helm release{'s' if changed_releases != 1 else ''} changed"
    lines.append(f"**Summary ({diff.stack}): {diff.summary}** ({tail})")
    return "\n".join(lines).rstrip("\n") + "\n"


def render_failure(stack: str, *, base_label: str, head_label: str, error: str) -> str:
    """The Markdown report of a stack whose preview could not be evaluated (ends with a newline)."""
    return "\n".join(
        [
            marker(stack),
            f"## Preview diff: {code(stack)} failed",
            "",
            f"Base: {base_label} · head: {head_label}.",
            "",
            "> [!CAUTION]",
            "> The offline preview could not be evaluated:",
            "",
            *fenced(error.rstrip("\n").splitlines()[-60:], language="text"),
            "",
        ]
    )
