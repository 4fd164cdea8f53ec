"""Helpers of the cost tests: a price table with round, hand-picked prices and a usage document."""
from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from tools.cost.prices import PriceTable, parse_prices
from tools.cost.usage import Usage, parse_usage

ROOT = Path(__file__).resolve().parents[2]

#: Round prices (USD per the real table's unit) so every expected amount can be checked by hand.
SIMPLE_PRICES: dict[str, str] = {
    "gke.clusterFee": "0.10",
    "gke.autopilot.vcpu": "0.04",
    "gke.autopilot.memory": "0.005",
    "gke.autopilot.ephemeralStorage": "0.0001",
    "sql.enterprise.vcpu": "0.04",
    "sql.enterprise.memory": "0.005",
    "sql.enterprisePlus.vcpu": "0.05",
    "sql.enterprisePlus.memory": "0.01",
    "sql.sharedCore.db-f1-micro": "0.01",
    "sql.sharedCore.db-g1-small": "0.03",
    "sql.ssdStorage": "0.2",
    "sql.backupStorage": "0.1",
    "sql.haMultiplier": "2",
    "nat.vmHour": "0.001",
    "nat.gatewayHourCap": "0.04",
    "nat.dataProcessed": "0.05",
    "nat.ipAddressHour": "0.005",
    "lb.forwardingRulesFirst5": "0.025",
    "lb.forwardingRuleAdditional": "0.01",
    "lb.dataProcessed": "0.008",
    "network.internetEgressPremium": "0.12",
    "network.staticIpInUse": "0",
    "network.staticIpUnused": "0.01",
    "armor.policy": "5",
    "armor.rule": "1",
    "armor.requests": "0.75",
    "armor.adaptiveProtectionStandard": "0",
    "certificateManager.certificate": "0.2",
    "certificateManager.mapEntry": "0.05",
    "storage.standard": "0.02",
    "storage.classA": "0.005",
    "storage.classB": "0.0004",
    "pubsub.throughput": "40",
    "pubsub.storage": "0.27",
    "artifactRegistry.storage": "0.1",
    "monitoring.uptimeExecutions": "0.3",
    "monitoring.alertCondition": "1.5",
    "monitoring.alertTimeSeries": "0.35",
    "monitoring.prometheusSamples": "0.06",
    "logging.ingestion": "0.5",
    "logging.vendedNetworkLogs": "0.25",
}


def real_table_data() -> dict[str, Any]:
    """The committed price table as parsed YAML (a fresh copy)."""
    return copy.deepcopy(yaml.safe_load((ROOT / "environments" / "prices.yaml").read_text()))


def simple_table() -> PriceTable:
    """The committed table (rules, allowances, type map) with every price replaced by :data:`SIMPLE_PRICES`.

    A price key of the real table missing from SIMPLE_PRICES fails here: add it.
    """
    data = real_table_data()
    for key, entry in data["prices"].items():
        entry.pop("regions", None)
        entry["usd"] = float(Decimal(SIMPLE_PRICES[key]))
    return parse_prices(data)


USAGE: dict[str, Any] = {
    "gke": {"clusterFeeCredit": {"value": False, "assumption": "the credit goes to the other stack"}},
    "network": {"natVms": {"value": 4, "assumption": "four nodes behind the NAT gateway"},
                "natDataGib": {"value": 20, "assumption": "twenty GiB of third-party traffic"}},
    "loadBalancer": {"requestsMillions": {"value": 5, "assumption": "five million requests a month"},
                     "inboundGib": {"value": 200, "assumption": "uploads through the load balancer"},
                     "outboundGib": {"value": 100, "assumption": "downloads through the load balancer"}},
    "storage": {"storedGib": {"value": 500, "assumption": "five hundred GiB of uploads kept"},
                "classAThousands": {"value": 50, "assumption": "fifty thousand object writes"},
                "classBThousands": {"value": 200, "assumption": "two hundred thousand object reads"}},
    "pubsub": {"throughputGib": {"value": 1034, "assumption": "ten free GiB plus exactly one TiB"},
               "retainedGib": {"value": 10, "assumption": "ten GiB retained by topic retention"}},
    "database": {"backupGib": {"value": 60, "assumption": "sixty GiB of backups and logs"}},
    "artifactRegistry": {"storedGib": {"value": 3, "assumption": "three GiB of image layers"}},
    "monitoring": {"prometheusSeriesPerPod": {"value": 100, "assumption": "one hundred series per Pod"},
                   "alertSeriesPerCondition": {"value": 3, "assumption": "three series per alert condition"}},
    "logging": {"ingestedGib": {"value": 60, "assumption": "sixty GiB of logs a month"},
                "vpcFlowLogsGib": {"value": 10, "assumption": "ten GiB of VPC Flow Logs"},
                "firewallLogsGib": {"value": 3, "assumption": "three GiB of firewall logs"}},
}


def usage(**changes: Any) -> Usage:
    """:data:`USAGE` validated, with ``section__key=value`` changes (e.g. ``network__natVms=40``)."""
    data = copy.deepcopy(USAGE)
    for path, value in changes.items():
        section, key = path.split("__")
        data[section][key]["value"] = value
    return parse_usage(data, "test-usage.yaml")
