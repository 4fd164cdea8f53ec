"""The monthly estimate of a stack: its offline plan x the price table x its usage assumptions.

:func:`estimate` walks the resources of a preview document (``make -s preview
FORMAT=json``, docs/seams.md), looks each type up in the price table
(:meth:`tools.cost.prices.PriceTable.rule_for`) and prices it with the
estimator named there (:data:`ESTIMATORS`), or counts it as free. The two
services' Pods are priced from their Helm values -- the same merge the program
deploys (``infra.releases.release_values`` over the chart's defaults) -- so the
estimate is the same whether or not the plan holds the Helm releases yet.

Money is :class:`~decimal.Decimal`; each line's monthly amount is rounded to the
cent (half up) and item and stack totals are sums of rounded lines, so the
printed numbers add up. A month is the table's ``hoursPerMonth`` (730 h).
Free tiers that belong to a project or billing account (certificates, uptime
executions, Pub/Sub throughput, Artifact Registry storage, logging) are drawn
down across the plan's resources in URN order, once per stack.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import yaml

from infra.settings import PROJECT, SERVICES, StackSettings
from tools.cost.prices import PriceTable
from tools.cost.usage import Usage

STACK_TYPE = "pulumi:pulumi:Stack"
HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
#: Synthetic item type for charges of the project that no single resource carries.
PROJECT_LOGGING_TYPE = "project:logging"
CENT = Decimal("0.01")
GIB = Decimal(2**30)
#: A placeholder digest for a service whose image is not built yet (its values are
#: what will be deployed; only the digest is unknown).
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m)?$")
_BYTES = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_BYTE_FACTORS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_SQL_CUSTOM = re.compile(r"^db-custom-([0-9]+)-([0-9]+)$")
_SQL_PERF = re.compile(r"^db-perf-optimized-N-([0-9]+)$")
#: Enterprise Plus performance-optimized machines have 8 GiB per vCPU
#: (https://cloud.google.com/sql/docs/postgres/machine-series-overview).
_PERF_GIB_PER_CPU = Decimal(8)
_GLOBAL_EXTERNAL_GATEWAY = ("gke-l7-global-external-managed", "gke-l7-gxlb")


class EstimateError(ValueError):
    """The plan or the values hold something the estimate cannot read; the message names it."""


def money(value: Decimal) -> Decimal:
    """Round to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    """One priced dimension of an item.

    Attributes:
        dimension: what is counted (``vCPU``, ``SSD storage``, ...).
        quantity: how much per month, in ``unit``.
        unit: the price's unit (``vCPU-hour``, ``GiB-month``, ...).
        unit_price: USD per unit (0 for an allowance or a free configuration).
        price: the price-table key (``prices.<key>`` / ``freeTier.<key>``) or "".
        monthly: quantity x unit_price, rounded to the cent.
        note: where the quantity comes from (a usage key, a plan input, a free tier).
    """

    dimension: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    price: str
    monthly: Decimal
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """JSON shape: dimension, quantity, unit, unit_price, price, monthly, note (numbers as floats)."""
        return {"dimension": self.dimension, "quantity": _num(self.quantity), "unit": self.unit,
                "unit_price": _num(self.unit_price), "price": self.price,
                "monthly": float(self.monthly), "note": self.note}


def _num(value: Decimal) -> float | int:
    if value == value.to_integral_value():
        return int(value)
    return float(round(value, 6))


@dataclass(frozen=True)
class Item:
    """One priced resource of the plan (or a project-level charge).

    Attributes:
        type: the resource type token (``gcp:sql/databaseInstance:DatabaseInstance``).
        name: its logical name in the plan (the service, for Pods).
        lines: its priced dimensions.
        note: how it was read (e.g. a release priced from values, not from the plan).
    """

    type: str
    name: str
    lines: tuple[Line, ...]
    note: str = ""

    @property
    def monthly(self) -> Decimal:
        """Sum of the lines' (rounded) monthly amounts."""
        return sum((line.monthly for line in self.lines), Decimal(0))

    def as_json(self) -> dict[str, Any]:
        """JSON shape: type, name, dimensions, monthly, note."""
        return {"type": self.type, "name": self.name, "dimensions": [line.as_json() for line in self.lines],
                "monthly": float(self.monthly), "note": self.note}


@dataclass
class Estimate:
    """The estimate of one stack.

    Attributes:
        stack, region, currency: where and in what.
        prices_as_of: the oldest read date of the price table (ISO date).
        items: priced resources, sorted by (type, name).
        free: ``{type: (count, reason)}`` of resources priced at zero by the table.
        unpriced: ``[(type, name)]`` of custom resources whose type the table does not know.
        budget_usd: the stack's configured monthly budget, or None.
        warnings: sentences for the reader (over budget, stale prices, unpriced types).
    """

    stack: str
    region: str
    currency: str
    prices_as_of: str
    items: list[Item]
    free: dict[str, tuple[int, str]] = field(default_factory=dict)
    unpriced: list[tuple[str, str]] = field(default_factory=list)
    budget_usd: Optional[int] = None
    warnings: list[str] = field(default_factory=list)

    @property
    def total_monthly(self) -> Decimal:
        """Sum of the items' monthly amounts."""
        return sum((item.monthly for item in self.items), Decimal(0))

    def as_document(self) -> dict[str, Any]:
        """``{"stack", "currency", "prices_as_of", "items", "total_monthly", ...}`` (see docs/cost.md)."""
        return {
            "stack": self.stack,
            "currency": self.currency,
            "prices_as_of": self.prices_as_of,
            "items": [item.as_json() for item in self.items],
            "total_monthly": float(self.total_monthly),
            "region": self.region,
            "budget_monthly": self.budget_usd,
            "free": [{"type": t, "count": c, "reason": r} for t, (c, r) in sorted(self.free.items())],
            "unpriced": [{"type": t, "name": n} for t, n in self.unpriced],
            "warnings": list(self.warnings),
        }


@dataclass
class Context:
    """What an estimator needs: the table, the usage, the stack and the whole plan.

    ``allowances`` tracks what is left of each free tier (drawn down in URN order);
    ``first`` remembers which type already carried a stack-total usage figure.
    """

    settings: StackSettings
    prices: PriceTable
    usage: Usage
    resources: Sequence[Mapping[str, Any]]
    root: Optional[Path] = None
    allowances: dict[str, Decimal] = field(default_factory=dict)
    first: set[str] = field(default_factory=set)

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def hours(self) -> Decimal:
        return self.prices.hours_per_month

    def line(self, dimension: str, quantity: Decimal, key: str, note: str = "") -> Line:
        """A line priced by ``prices.<key>`` in the stack's region."""
        unit_price = self.prices.price(key, self.region)
        unit = self.prices.prices[key].unit
        return Line(dimension, quantity, unit, unit_price, key, money(quantity * unit_price), note)

    def free_line(self, dimension: str, quantity: Decimal, unit: str, source: str, note: str) -> Line:
        """A line that costs nothing (an allowance or a free configuration), kept visible."""
        return Line(dimension, quantity, unit, Decimal(0), source, Decimal("0.00"), note)

    def draw(self, allowance: str, quantity: Decimal) -> tuple[Decimal, Decimal]:
        """Take up to ``quantity`` from the free tier ``allowance``; ``(free part, billed part)``."""
        left = self.allowances.setdefault(allowance, self.prices.allowance(allowance))
        free = min(left, quantity)
        self.allowances[allowance] = left - free
        return free, quantity - free

    def is_first(self, kind: str) -> bool:
        """True the first time ``kind`` is asked (stack-total usage goes on the first resource only)."""
        if kind in self.first:
            return False
        self.first.add(kind)
        return True

    def of_type(self, type_token: str) -> list[Mapping[str, Any]]:
        return [r for r in self.resources if r.get("type") == type_token]


def _tiered(ctx: Context, dimension: str, quantity: Decimal, allowance: str, key: str,
            unit_quantity: Callable[[Decimal], Decimal] = lambda q: q, note: str = "") -> list[Line]:
    """Lines for ``quantity`` after drawing the free tier: a zero line for the free part, a priced one for the rest."""
    free, billed = ctx.draw(allowance, quantity)
    tier = ctx.prices.free_tier[allowance]
    lines: list[Line] = []
    if free > 0:
        lines.append(ctx.free_line(f"{dimension} (free tier)", free, tier.unit, f"freeTier.{allowance}",
                                   f"first {tier.quantity} {tier.unit} free"))
    if billed > 0 or not lines:
        lines.append(ctx.line(dimension, unit_quantity(billed), key, note))
    return lines


def _usage_note(key: str, item: Any) -> str:
    return f"usage {key} = {item.value}: {item.assumption}"


# --------------------------------------------------------------------------- quantities


def cpu_cores(quantity: Any) -> Decimal:
    """A Kubernetes CPU quantity (``250m``, ``"2"``, 0.5) in cores.

    Raises:
        EstimateError: not a CPU quantity.
    """
    if isinstance(quantity, (int, float)) and not isinstance(quantity, bool):
        return Decimal(str(quantity))
    match = _CPU.match(quantity) if isinstance(quantity, str) else None
    if not match:
        raise EstimateError(f"not a CPU quantity: {quantity!r}")
    value = Decimal(match.group(1))
    return value / 1000 if match.group(2) else value


def gib(quantity: Any) -> Decimal:
    """A Kubernetes byte quantity (``512Mi``, ``2Gi``, ``1G``, bytes) in GiB.

    Raises:
        EstimateError: not a byte quantity.
    """
    if isinstance(quantity, (int, float)) and not isinstance(quantity, bool):
        return Decimal(str(quantity)) / GIB
    match = _BYTES.match(quantity) if isinstance(quantity, str) else None
    if not match:
        raise EstimateError(f"not a byte quantity: {quantity!r}")
    return Decimal(match.group(1)) * _BYTE_FACTORS[match.group(2) or ""] / GIB


def _seconds(duration: Any) -> Decimal:
    match = re.match(r"^([0-9]+(?:\.[0-9]+)?)(s|m|h)$", str(duration))
    if not match:
        raise EstimateError(f"not a duration like '30s': {duration!r}")
    return Decimal(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


# --------------------------------------------------------------------------- Pods


@dataclass(frozen=True)
class PodShape:
    """What Autopilot bills for one Pod: cores, memory GiB, ephemeral storage GiB (after its minimums)."""

    cpu: Decimal
    memory_gib: Decimal
    ephemeral_gib: Decimal


def autopilot_pod(requests: Sequence[Mapping[str, Any]], prices: PriceTable) -> PodShape:
    """The billed shape of a Pod whose containers (native sidecars included) request ``requests``.

    Sums the containers' ``cpu`` / ``memory`` / ``ephemeral-storage`` requests, then
    applies the general-purpose minimums and the memory:CPU ratio of
    ``autopilotRules`` (the smaller resource is raised), as GKE does
    (https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests).
    """
    rules = prices.autopilot_rules
    cpu = sum((cpu_cores(r.get("cpu", 0)) for r in requests), Decimal(0))
    memory = sum((gib(r.get("memory", 0)) for r in requests), Decimal(0))
    ephemeral = sum((gib(r.get("ephemeral-storage", 0)) for r in requests), Decimal(0))
    cpu = max(cpu, rules.min_cpu)
    memory = max(memory, rules.min_memory_gib)
    ephemeral = max(ephemeral, rules.min_ephemeral_gib)
    if memory < cpu * rules.min_memory_per_cpu_gib:
        memory = cpu * rules.min_memory_per_cpu_gib
    if memory > cpu * rules.max_memory_per_cpu_gib:
        cpu = memory / rules.max_memory_per_cpu_gib
    return PodShape(cpu, memory, ephemeral)


def service_values(settings: StackSettings, service: str, root: Optional[Path] = None) -> dict[str, Any]:
    """The complete Helm values ``service`` is deployed with: chart defaults <- environment <- stack.

    The same functions the program uses (``infra.releases.load_environment_values``,
    ``release_values``, ``stack_outputs_from_settings``); a service without an image
    digest yet gets :data:`PLACEHOLDER_DIGEST` (only the digest is unknown).
    """
    from infra import releases

    outputs = releases.stack_outputs_from_settings(settings)
    digests = {s: outputs.image_digests.get(s) or PLACEHOLDER_DIGEST for s in releases.SERVICES}
    outputs = dataclasses.replace(outputs, image_digests=digests)
    environment = releases.load_environment_values(settings.stack, service, root)
    chart = root / "charts" / releases.CHART_DIR.name if root else releases.CHART_DIR
    defaults = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    return releases.deep_merge(defaults, releases.release_values(service, environment, outputs, "0" * 64))


def pod_requests(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``requests`` of each container of the service's Pod: the app, and the Cloud SQL Auth Proxy
    native sidecar when ``cloudSqlProxy.instanceConnectionName`` is set (charts/print-service)."""
    requests = [((values.get("resources") or {}).get("requests") or {})]
    proxy = values.get("cloudSqlProxy") or {}
    if proxy.get("instanceConnectionName"):
        requests.append(((proxy.get("resources") or {}).get("requests") or {}))
    return requests


def replicas(values: Mapping[str, Any]) -> int:
    """Pods always running: the HPA minimum when autoscaling is enabled, else ``replicaCount``."""
    autoscaling = values.get("autoscaling") or {}
    if autoscaling.get("enabled"):
        return int(autoscaling.get("minReplicas", 1))
    return int(values.get("replicaCount", 1))


def pods_item(ctx: Context, service: str, values: Mapping[str, Any], in_plan: bool) -> Item:
    """Autopilot vCPU, memory and ephemeral storage of ``service``'s Pods, and their Prometheus samples."""
    shape = autopilot_pod(pod_requests(values), ctx.prices)
    count = replicas(values)
    hours = ctx.hours * count
    where = (f"{count} Pod(s) (HPA minimum)" if (values.get("autoscaling") or {}).get("enabled")
             else f"{count} Pod(s) (replicaCount)")
    lines = [
        ctx.line("vCPU", shape.cpu * hours, "gke.autopilot.vcpu", f"{where} x {_fmt(shape.cpu)} vCPU x {ctx.hours} h"),
        ctx.line("memory", shape.memory_gib * hours, "gke.autopilot.memory",
                 f"{where} x {_fmt(shape.memory_gib)} GiB x {ctx.hours} h"),
        ctx.line("ephemeral storage", shape.ephemeral_gib * hours, "gke.autopilot.ephemeralStorage",
                 f"{where} x {_fmt(shape.ephemeral_gib)} GiB x {ctx.hours} h"),
    ]
    monitoring = values.get("podMonitoring") or {}
    if monitoring.get("enabled"):
        series = ctx.usage.monitoring.prometheus_series_per_pod
        scrapes = ctx.hours * 3600 / _seconds(monitoring.get("interval", "60s"))
        samples = series.value * count * scrapes / Decimal(10**6)
        lines.append(ctx.line("Managed Prometheus samples", samples, "monitoring.prometheusSamples",
                              f"{count} Pod(s) x scrape every {monitoring.get('interval')}; "
                              + _usage_note("monitoring.prometheusSeriesPerPod", series)))
    note = f"from its Helm values (environments/{ctx.settings.stack}/{service}.yaml over the chart defaults)"
    if not in_plan:
        note += "; its release is not in this plan (no image digest in the stack config yet)"
    return Item(HELM_RELEASE_TYPE, service, tuple(lines), note)


def _fmt(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{float(value):.4g}"


# --------------------------------------------------------------------------- estimators


Estimator = Callable[[Mapping[str, Any], Context], list[Line]]


def gke_cluster(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Cluster management fee per hour, minus the GKE free-tier credit when the usage grants it."""
    inputs = res.get("inputs") or {}
    if not inputs.get("enableAutopilot"):
        raise EstimateError(f"{res.get('name')}: a GKE Standard cluster's nodes are not priced by this table")
    lines = [ctx.line("cluster management fee", ctx.hours, "gke.clusterFee")]
    credit = ctx.usage.gke.cluster_fee_credit
    if credit.value and ctx.is_first("gke.clusterFeeCredit"):
        amount = min(ctx.prices.allowance("gke.clusterFeeCredit"), lines[0].monthly)
        lines.append(Line("GKE free-tier credit", Decimal(1), "credit", -amount, "freeTier.gke.clusterFeeCredit",
                          -money(amount), _usage_note("gke.clusterFeeCredit", credit)))
    return lines


def cloud_sql(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """vCPU and memory hours (or a shared-core instance), SSD storage, HA x2, backups from usage."""
    settings = (res.get("inputs") or {}).get("settings") or {}
    tier = str(settings.get("tier", ""))
    edition = settings.get("edition", "ENTERPRISE")
    ha = settings.get("availabilityType") == "REGIONAL"
    factor = ctx.prices.price("sql.haMultiplier", ctx.region) if ha else Decimal(1)
    ha_note = "REGIONAL (HA): x2" if ha else "ZONAL"
    lines: list[Line] = []
    family = "sql.enterprisePlus" if edition == "ENTERPRISE_PLUS" else "sql.enterprise"
    if (m := _SQL_CUSTOM.match(tier)) is not None:
        cpu, memory = Decimal(m.group(1)), Decimal(m.group(2)) / 1024
    elif (m := _SQL_PERF.match(tier)) is not None:
        cpu = Decimal(m.group(1))
        memory = cpu * _PERF_GIB_PER_CPU
    elif f"sql.sharedCore.{tier}" in ctx.prices.prices:
        lines.append(ctx.line(f"instance {tier}", ctx.hours * factor, f"sql.sharedCore.{tier}", ha_note))
        cpu = memory = None
    else:
        raise EstimateError(f"{res.get('name')}: Cloud SQL tier {tier!r} is not priced (environments/prices.yaml)")
    if cpu is not None and memory is not None:
        lines.append(ctx.line("vCPU", cpu * ctx.hours * factor, f"{family}.vcpu",
                              f"{tier}: {_fmt(cpu)} vCPU x {ctx.hours} h; {ha_note}"))
        lines.append(ctx.line("memory", memory * ctx.hours * factor, f"{family}.memory",
                              f"{tier}: {_fmt(memory)} GiB x {ctx.hours} h; {ha_note}"))
    disk_type = settings.get("diskType", "PD_SSD")
    if disk_type != "PD_SSD":
        raise EstimateError(f"{res.get('name')}: Cloud SQL disk type {disk_type!r} is not priced")
    disk = Decimal(str(settings.get("diskSize", 10)))
    lines.append(ctx.line("SSD storage", disk * factor, "sql.ssdStorage", f"diskSize {disk} GB; {ha_note}"))
    backups = ctx.usage.database.backup_gib
    if (settings.get("backupConfiguration") or {}).get("enabled"):
        lines.append(ctx.line("backups", backups.value, "sql.backupStorage",
                              _usage_note("database.backupGib", backups)))
    return lines


def cloud_nat(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Gateway hours per VM served (capped beyond 32), its external IPs, data processed."""
    inputs = res.get("inputs") or {}
    vms = ctx.usage.network.nat_vms
    lines: list[Line] = []
    if vms.value <= 32:
        lines.append(ctx.line("gateway (per VM)", vms.value * ctx.hours, "nat.vmHour",
                              _usage_note("network.natVms", vms)))
    else:
        lines.append(ctx.line("gateway (more than 32 VMs)", ctx.hours, "nat.gatewayHourCap",
                              _usage_note("network.natVms", vms)))
    if inputs.get("natIpAllocateOption") == "MANUAL_ONLY":
        ips, how = Decimal(len(inputs.get("natIps") or [])), "natIps"
    else:
        # AUTO_ONLY: Google allocates addresses as ports run out; one address has
        # 64,512 ports, far more than a handful of nodes' default 64 each.
        ips, how = Decimal(1), "AUTO_ONLY: one automatically allocated address"
    lines.append(ctx.line("external IP addresses", ips * ctx.hours, "nat.ipAddressHour", how))
    data = ctx.usage.network.nat_data_gib
    lines.append(ctx.line("data processed", data.value, "nat.dataProcessed", _usage_note("network.natDataGib", data)))
    return lines


def load_balancer(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """The global external Application Load Balancer of a GKE Gateway: forwarding rules, data, egress."""
    spec = (res.get("inputs") or {}).get("spec") or {}
    cls = spec.get("gatewayClassName")
    if cls not in _GLOBAL_EXTERNAL_GATEWAY:
        raise EstimateError(f"{res.get('name')}: GatewayClass {cls!r} is not priced (only {_GLOBAL_EXTERNAL_GATEWAY})")
    # One forwarding rule per listener port (GKE Gateway: the HTTPS and HTTP listeners
    # become two forwarding rules on the same address).
    rules = Decimal(len({listener.get("port") for listener in spec.get("listeners") or []}))
    lines: list[Line] = []
    # The first-5 price is per project: the first Gateway carries it.
    if ctx.is_first("lb.forwardingRulesFirst5"):
        lines.append(ctx.line("forwarding rules (first 5)", ctx.hours, "lb.forwardingRulesFirst5",
                              f"{_fmt(rules)} rule(s): one per listener port"))
        extra = max(Decimal(0), rules - 5)
    else:
        extra = rules
    if extra > 0:
        lines.append(ctx.line("forwarding rules (beyond 5)", extra * ctx.hours, "lb.forwardingRuleAdditional"))
    if ctx.is_first("loadBalancer.usage"):
        lb = ctx.usage.load_balancer
        lines.append(ctx.line("data processed", lb.inbound_gib.value + lb.outbound_gib.value, "lb.dataProcessed",
                              f"inbound {lb.inbound_gib.value} + outbound {lb.outbound_gib.value} GiB; "
                              + lb.inbound_gib.assumption + " / " + lb.outbound_gib.assumption))
        lines.append(ctx.line("internet egress (Premium Tier)", lb.outbound_gib.value,
                              "network.internetEgressPremium", _usage_note("loadBalancer.outboundGib", lb.outbound_gib)))
    return lines


def cloud_armor(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Cloud Armor Standard: the policy, its rules (default rule included), requests; Adaptive Protection."""
    inputs = res.get("inputs") or {}
    rules = Decimal(max(1, len(inputs.get("rules") or [])))
    lines = [ctx.line("policy", Decimal(1), "armor.policy"),
             ctx.line("rules", rules, "armor.rule", f"{rules} rule(s) in the policy")]
    if ctx.is_first("armor.requests"):
        requests = ctx.usage.load_balancer.requests_millions
        lines.append(ctx.line("requests", requests.value, "armor.requests",
                              _usage_note("loadBalancer.requestsMillions", requests)))
    adaptive = ((inputs.get("adaptiveProtectionConfig") or {}).get("layer7DdosDefenseConfig") or {}).get("enable")
    if adaptive:
        lines.append(ctx.line("Adaptive Protection (Standard: alerts)", Decimal(1), "armor.adaptiveProtectionStandard"))
    return lines


def certificate(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """One certificate-month beyond the project's free certificates."""
    return _tiered(ctx, "certificate", Decimal(1), "certificateManager.certificates", "certificateManager.certificate")


def certificate_map_entry(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """One map-entry-month beyond the project's free map entries."""
    return _tiered(ctx, "map entry", Decimal(1), "certificateManager.mapEntries", "certificateManager.mapEntry")


def global_address(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """An external address: free while a Gateway's forwarding rules use it, else the unused-IP price.
    An internal range (Private Service Access) costs nothing: no lines."""
    inputs = res.get("inputs") or {}
    if inputs.get("addressType", "EXTERNAL") != "EXTERNAL":
        return []
    named = {a.get("value") for g in ctx.of_type("kubernetes:gateway.networking.k8s.io/v1:Gateway")
             for a in (((g.get("inputs") or {}).get("spec") or {}).get("addresses") or [])}
    if inputs.get("name") in named:
        return [ctx.line("static IP (in use by the Gateway)", ctx.hours, "network.staticIpInUse")]
    return [ctx.line("static IP (not used by a Gateway of the plan)", ctx.hours, "network.staticIpUnused")]


def bucket(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Storage (by class and location) and operations, from usage (the stack's total, on its first bucket)."""
    inputs = res.get("inputs") or {}
    storage_class = str(inputs.get("storageClass", "STANDARD")).lower()
    location = str(inputs.get("location", ""))
    if location.lower() != ctx.region:
        raise EstimateError(f"{res.get('name')}: bucket location {location!r} is not the stack's region "
                            f"{ctx.region!r}; multi- and dual-region prices are not in the table")
    if not ctx.is_first("storage.usage"):
        return []
    usage = ctx.usage.storage
    return [
        ctx.line(f"{storage_class} storage", usage.stored_gib.value, f"storage.{storage_class}",
                 _usage_note("storage.storedGib", usage.stored_gib)),
        ctx.line("Class A operations", usage.class_a_thousands.value, "storage.classA",
                 _usage_note("storage.classAThousands", usage.class_a_thousands)),
        ctx.line("Class B operations", usage.class_b_thousands.value, "storage.classB",
                 _usage_note("storage.classBThousands", usage.class_b_thousands)),
    ]


def _retained(ctx: Context) -> list[Line]:
    if not ctx.is_first("pubsub.retained"):
        return []
    retained = ctx.usage.pubsub.retained_gib
    return [ctx.line("retained messages", retained.value, "pubsub.storage", _usage_note("pubsub.retainedGib", retained))]


def pubsub_topic(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Throughput of the project (on the first topic, after the free 10 GiB) and topic retention storage."""
    lines: list[Line] = []
    if ctx.is_first("pubsub.throughput"):
        throughput = ctx.usage.pubsub.throughput_gib
        lines += _tiered(ctx, "throughput", throughput.value, "pubsub.throughput", "pubsub.throughput",
                         unit_quantity=lambda q: q / 1024, note=_usage_note("pubsub.throughputGib", throughput))
    if (res.get("inputs") or {}).get("messageRetentionDuration"):
        lines += _retained(ctx)
    return lines


def pubsub_subscription(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Only retained acknowledged messages cost storage (unacknowledged ones do not): else no lines."""
    if (res.get("inputs") or {}).get("retainAckedMessages"):
        return _retained(ctx)
    return []


def artifact_registry(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Stored images (the stack's total, on its first repository) beyond the free 0.5 GB."""
    if not ctx.is_first("artifactRegistry.usage"):
        return []
    stored = ctx.usage.artifact_registry.stored_gib
    return _tiered(ctx, "storage", stored.value, "artifactRegistry.storage", "artifactRegistry.storage",
                   note=_usage_note("artifactRegistry.storedGib", stored))


def uptime_check(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Executions: one per period from each checker region, beyond the project's free million."""
    inputs = res.get("inputs") or {}
    period = _seconds(inputs.get("period", "60s"))
    regions = len(inputs.get("selectedRegions") or []) or ctx.prices.uptime_checker_regions.default
    executions = (ctx.hours * 3600 / period * regions).to_integral_value()
    return _tiered(ctx, "executions", executions, "monitoring.uptimeExecutions", "monitoring.uptimeExecutions",
                   unit_quantity=lambda q: q / 1000,
                   note=f"every {period}s from {regions} checker regions")


def alert_policy(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """Per condition per month, and the time series its queries return each execution period."""
    conditions = Decimal(len((res.get("inputs") or {}).get("conditions") or []))
    series = ctx.usage.monitoring.alert_series_per_condition
    periods = ctx.hours * 3600 / ctx.prices.alerting.execution_period_seconds
    returned = conditions * series.value * periods / Decimal(10**6)
    return [ctx.line("conditions", conditions, "monitoring.alertCondition"),
            ctx.line("time series returned", returned, "monitoring.alertTimeSeries",
                     f"every {ctx.prices.alerting.execution_period_seconds}s; "
                     + _usage_note("monitoring.alertSeriesPerCondition", series))]


def vpc_flow_logs(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """A subnet costs nothing itself; with VPC Flow Logs (``logConfig``) the logs are vended network logs."""
    if not (res.get("inputs") or {}).get("logConfig") or not ctx.is_first("logging.vpcFlowLogs"):
        return []
    flow = ctx.usage.logging.vpc_flow_logs_gib
    return [ctx.line("VPC Flow Logs", flow.value, "logging.vendedNetworkLogs", _usage_note("logging.vpcFlowLogsGib", flow))]


def firewall_logs(res: Mapping[str, Any], ctx: Context) -> list[Line]:
    """A firewall rule costs nothing itself; Firewall Rules Logging (``logConfig``) is vended network logs
    (the stack's total, on the first logging rule)."""
    if not (res.get("inputs") or {}).get("logConfig") or not ctx.is_first("logging.firewallLogs"):
        return []
    logs = ctx.usage.logging.firewall_logs_gib
    return [ctx.line("Firewall Rules Logging", logs.value, "logging.vendedNetworkLogs",
                     _usage_note("logging.firewallLogsGib", logs))]


#: Estimator names used by ``resourceTypes.<type>.estimator`` in the price table.
#: ``autopilotPods`` prices the services' Pods from their values (see :func:`pods_item`).
ESTIMATORS: dict[str, Optional[Estimator]] = {
    "gkeCluster": gke_cluster,
    "autopilotPods": None,
    "cloudSql": cloud_sql,
    "cloudNat": cloud_nat,
    "loadBalancer": load_balancer,
    "cloudArmor": cloud_armor,
    "certificate": certificate,
    "certificateMapEntry": certificate_map_entry,
    "globalAddress": global_address,
    "bucket": bucket,
    "pubsubTopic": pubsub_topic,
    "pubsubSubscription": pubsub_subscription,
    "artifactRegistry": artifact_registry,
    "uptimeCheck": uptime_check,
    "alertPolicy": alert_policy,
    "vpcFlowLogs": vpc_flow_logs,
    "firewallLogs": firewall_logs,
}


def logging_item(ctx: Context) -> Item:
    """Log ingestion of the project beyond its free 50 GiB (no resource of the plan carries it)."""
    ingested = ctx.usage.logging.ingested_gib
    lines = _tiered(ctx, "log ingestion", ingested.value, "logging.ingestion", "logging.ingestion",
                    note=_usage_note("logging.ingestedGib", ingested))
    return Item(PROJECT_LOGGING_TYPE, ctx.settings.project, tuple(lines), "the project's logs (_Default bucket)")


# --------------------------------------------------------------------------- the estimate


def is_component(type_token: str) -> bool:
    """Component resources (this project's ``print-platform:*`` types, the stack) hold nothing billable."""
    return type_token == STACK_TYPE or type_token.startswith(f"{PROJECT}:")


def estimate(document: Mapping[str, Any], settings: StackSettings, usage: Usage, prices: PriceTable,
             root: Optional[Path] = None) -> Estimate:
    """Price every resource of ``document`` (a preview document of ``settings.stack``).

    Args:
        document: ``{"stack", "resources": [{"urn", "type", "name", "inputs", ...}], ...}``.
        settings: the stack's validated settings (region, budget, names).
        usage: the stack's validated usage assumptions.
        prices: the validated price table.
        root: repository root holding ``environments/`` and ``charts/`` (default: this checkout).

    Returns:
        The :class:`Estimate`; a type the table does not know is listed in
        ``unpriced`` (and warned about), not silently skipped.

    Raises:
        EstimateError: a resource the table's estimator cannot price (the message names it).
        KeyError: a price missing for the stack's region (the message names key and region).
    """
    resources = sorted((r for r in document.get("resources") or [] if not is_component(str(r.get("type")))),
                       key=lambda r: str(r.get("urn")))
    ctx = Context(settings=settings, prices=prices, usage=usage, resources=resources, root=root)
    result = Estimate(stack=settings.stack, region=settings.region, currency=prices.currency,
                      prices_as_of=prices.as_of.isoformat(), items=[],
                      budget_usd=settings.config.budget.amount_usd if settings.config.budget else None)
    autopilot = False
    releases_in_plan = {str(r.get("name")) for r in resources if r.get("type") == HELM_RELEASE_TYPE}
    for res in resources:
        type_token, name = str(res.get("type")), str(res.get("name"))
        rule = prices.rule_for(type_token)
        if rule is None:
            result.unpriced.append((type_token, name))
            continue
        if rule.free is not None:
            count, _ = result.free.get(type_token, (0, rule.free))
            result.free[type_token] = (count + 1, rule.free)
            continue
        if rule.estimator not in ESTIMATORS:
            raise EstimateError(f"environments/prices.yaml: resourceTypes.{type_token}.estimator: "
                                f"unknown estimator {rule.estimator!r} (known: {sorted(ESTIMATORS)})")
        estimator = ESTIMATORS[rule.estimator]
        if type_token == "gcp:container/cluster:Cluster" and (res.get("inputs") or {}).get("enableAutopilot"):
            autopilot = True
        if estimator is None:
            continue  # the Pods of a release are priced from its values below
        lines = estimator(res, ctx)
        if lines:
            result.items.append(Item(type_token, name, tuple(lines)))
        else:
            # e.g. an internal address range, a subnet without flow logs, or a second
            # bucket whose stack-total usage is already on the first.
            reason = "no charge for this configuration, or its usage is counted on the first of its type"
            count, _ = result.free.get(type_token, (0, reason))
            result.free[type_token] = (count + 1, reason)
    if autopilot:
        for service in SERVICES:
            values = service_values(settings, service, root)
            result.items.append(pods_item(ctx, service, values, service in releases_in_plan))
    result.items.append(logging_item(ctx))
    result.items.sort(key=lambda item: (item.type, item.name))
    _warn(result, prices)
    return result


def _warn(result: Estimate, prices: PriceTable) -> None:
    from datetime import date

    total = result.total_monthly
    if result.budget_usd is not None and total > result.budget_usd:
        result.warnings.append(
            f"the estimate, {result.currency} {total:.2f}/month, exceeds the {result.stack} budget of "
            f"{result.currency} {result.budget_usd} (print-platform:budget.amountUsd in Pulumi.{result.stack}.yaml)")
    for type_token, name in result.unpriced:
        result.warnings.append(f"{type_token} {name!r}: the price table has no entry for this type; "
                               "add one to environments/prices.yaml (docs/cost.md)")
    stale = prices.age_problem(date.today())
    if stale:
        result.warnings.append(stale)
