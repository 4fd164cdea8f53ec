"""The price table (environments/prices.yaml): fresh, sourced, region-complete, and covering every plan type."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from cost_support import real_table_data
from infra.settings import ConfigError, load_stack_settings
from tools.cost.estimate import ESTIMATORS, is_component
from tools.cost.prices import load_prices, parse_prices
from tools.mock_runtime import run_stack

STACKS = ("dev", "prod")

#: Resource types the other parts of the platform add (bootstrap: API services; releases:
#: Helm releases, image builds, IAP grants; reconcile: its service account, an alert
#: policy): each must be priced or explicitly free before it lands in a plan.
EXPECTED_TYPES = (
    "gcp:projects/service:Service",
    "docker-build:index:Image",
    "kubernetes:helm.sh/v3:Release",
    "gcp:iap/webBackendServiceIamMember:WebBackendServiceIamMember",
    "gcp:iap/webIamMember:WebIamMember",
    "gcp:serviceaccount/account:Account",
    "gcp:monitoring/alertPolicy:AlertPolicy",
    "gcp:billing/budget:Budget",
    "kubernetes:core/v1:Secret",
    "kubernetes:networking.gke.io/v1:GCPBackendPolicy",
)


@pytest.fixture(scope="module")
def prices():
    return load_prices()


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    out = {}
    for stack in STACKS:
        capture = run_stack(stack)
        assert capture.error is None, capture.error
        out[stack] = capture.as_document()
    return out


def test_the_table_is_not_older_than_its_stated_age(prices):
    """Fails once the oldest `read` date is more than maxAgeDays old: re-read the pages (docs/cost.md)."""
    assert prices.age_problem(date.today()) is None, prices.age_problem(date.today())


def test_the_age_check_fails_past_the_stated_age(prices):
    too_late = prices.as_of + timedelta(days=prices.max_age_days + 1)
    problem = prices.age_problem(too_late)
    assert problem is not None and f"maxAgeDays {prices.max_age_days}" in problem
    assert prices.age_problem(prices.as_of + timedelta(days=prices.max_age_days)) is None


def test_every_price_is_sourced_and_dated(prices):
    sourced = [*prices.prices.items(), *prices.free_tier.items()]
    for key, entry in sourced:
        assert entry.url.startswith("https://cloud.google.com/"), key
        assert entry.read <= date.today(), f"{key}: read in the future"


@pytest.mark.parametrize("stack", STACKS)
def test_every_regional_price_covers_the_stacks_region(prices, stack):
    region = load_stack_settings(stack).region
    assert prices.regions_missing(region) == []


def test_estimators_named_in_the_table_exist_and_all_are_used(prices):
    named = {rule.estimator for rule in prices.resource_types.values() if rule.estimator}
    assert named <= set(ESTIMATORS), named - set(ESTIMATORS)
    assert set(ESTIMATORS) <= named, set(ESTIMATORS) - named


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_type_of_the_plan_is_priced_or_explicitly_free(prices, documents, stack):
    types = {r["type"] for r in documents[stack]["resources"] if not is_component(r["type"])}
    unpriced = sorted(t for t in types if prices.rule_for(t) is None)
    assert unpriced == [], f"add these types to environments/prices.yaml (priced or free: reason): {unpriced}"


@pytest.mark.parametrize("type_token", EXPECTED_TYPES)
def test_types_other_parts_add_are_covered(prices, type_token):
    assert prices.rule_for(type_token) is not None


@pytest.mark.parametrize("type_token", [
    "kubernetes:core/v1:PersistentVolumeClaim",   # a persistent disk
    "kubernetes:core/v1:Service",                 # type LoadBalancer makes a load balancer
    "gcp:compute/instance:Instance",
    "gcp:redis/instance:Instance",
])
def test_billable_types_are_not_swallowed_by_a_pattern(prices, type_token):
    assert prices.rule_for(type_token) is None


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d["prices"]["gke.clusterFee"].pop("url"), "prices.gke.clusterFee.url: missing"),
        (lambda d: d["prices"]["gke.clusterFee"].update(url="https://example.com/prices"),
         "prices.gke.clusterFee.url: String should match pattern"),
        (lambda d: d["prices"]["gke.clusterFee"].update(read="yesterday"), "prices.gke.clusterFee.read: "),
        (lambda d: d["prices"]["gke.clusterFee"].update(regions={"europe-west1": 0.1}),
         "prices.gke.clusterFee.usd: give either usd"),
        (lambda d: d["prices"]["gke.clusterFee"].update(usd=-1), "prices.gke.clusterFee.usd: "),
        (lambda d: d["resourceTypes"]["gcp:compute/network:Network"].update(free=" "),
         "resourceTypes.gcp:compute/network:Network.free: say why"),
        (lambda d: d["typePatterns"].update({"kubernetes:*": {"estimator": "bucket"}}),
         "typePatterns: kubernetes:*: a type pattern may only mark types free"),
        (lambda d: d.update(currency="EUR"), "currency: String should match pattern"),
        (lambda d: d.update(surprise=1), "surprise: unknown key"),
    ],
    ids=["no-url", "not-google", "bad-date", "both-forms", "negative", "free-without-reason", "pattern-estimator",
         "currency", "unknown-key"],
)
def test_a_malformed_table_is_rejected_naming_the_key(mutate, fragment):
    data = real_table_data()
    mutate(data)
    with pytest.raises(ConfigError) as info:
        parse_prices(data)
    message = str(info.value)
    assert message.startswith("environments/prices.yaml: "), message
    assert fragment in message, message


def test_a_price_missing_for_a_region_names_key_and_region(prices):
    with pytest.raises(KeyError, match="gke.autopilot.vcpu: no price for region 'asia-east1'"):
        prices.price("gke.autopilot.vcpu", "asia-east1")
