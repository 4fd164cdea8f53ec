"""The price table (``environments/prices.yaml``): loaded, validated, looked up by key and region.

Every price carries the Google pricing page it comes from (``url``) and the day
it was read (``read``); :attr:`PriceTable.as_of` is the oldest of those days,
and :meth:`PriceTable.age_problem` says when that is older than the table's
``maxAgeDays``. Resource types map to an estimator or to an explicit ``free``
entry (:meth:`PriceTable.rule_for`), so "not in the table" and "free" are
different answers. How to update the table: docs/cost.md.
"""
from __future__ import annotations

import fnmatch
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
#: Where the table lives, relative to the repository root.
PRICES_FILE = "environments/prices.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class _Sourced(_Model):
    """Where a figure comes from: the pricing page and the day it was read."""

    url: str = Field(pattern=r"^https://cloud\.google\.com/")
    read: date
    note: str = ""


class Price(_Sourced):
    """One price: USD per ``unit``, for every region (``usd``) or per region (``regions``)."""

    unit: str = Field(min_length=1)
    usd: Optional[Decimal] = Field(default=None, ge=0)
    regions: Optional[dict[str, Decimal]] = None

    @model_validator(mode="after")
    def _one_of(self) -> "Price":
        if (self.usd is None) == (self.regions is None):
            raise ValueError("usd: give either usd (every region) or regions ({region: usd}), not both or neither")
        if self.regions is not None and any(v < 0 for v in self.regions.values()):
            raise ValueError("regions: prices must be >= 0")
        return self


class FreeTier(_Sourced):
    """An allowance subtracted before pricing (``quantity`` in ``unit``)."""

    unit: str = Field(min_length=1)
    quantity: Decimal = Field(ge=0)


class AutopilotRules(_Sourced):
    """How GKE Autopilot raises a Pod's summed requests before billing them (general-purpose class)."""

    min_cpu: Decimal = Field(gt=0)
    min_memory_gib: Decimal = Field(gt=0)
    min_ephemeral_gib: Decimal = Field(gt=0)
    min_memory_per_cpu_gib: Decimal = Field(gt=0)
    max_memory_per_cpu_gib: Decimal = Field(gt=0)


class AlertingRules(_Sourced):
    """Alert condition evaluation period (seconds) used to count the time series returned."""

    execution_period_seconds: int = Field(gt=0)


class UptimeRules(_Sourced):
    """Checker regions an uptime check runs from when it selects none."""

    default: int = Field(gt=0)


class TypeRule(_Model):
    """A resource type's entry: priced by ``estimator``, or ``free`` with the reason."""

    estimator: Optional[str] = None
    free: Optional[str] = None

    @model_validator(mode="after")
    def _one_of(self) -> "TypeRule":
        if (self.estimator is None) == (self.free is None):
            raise ValueError("estimator: give either estimator or free (the reason it costs nothing)")
        if self.free is not None and not self.free.strip():
            raise ValueError("free: say why the type costs nothing")
        return self


class PriceTable(_Model):
    """The validated ``environments/prices.yaml``.

    Attributes:
        currency: ``USD``.
        max_age_days: how old the oldest ``read`` date may be.
        hours_per_month: hours in the billing month the estimate uses (730).
        prices: ``{key: Price}``. free_tier: ``{key: FreeTier}``.
        autopilot_rules, alerting, uptime_checker_regions: pricing rules with their sources.
        resource_types: ``{type token: TypeRule}``. type_patterns: ``{glob: TypeRule}``.
    """

    currency: str = Field(pattern=r"^USD$")
    max_age_days: int = Field(gt=0)
    hours_per_month: Decimal = Field(gt=0)
    prices: dict[str, Price]
    free_tier: dict[str, FreeTier]
    autopilot_rules: AutopilotRules
    alerting: AlertingRules
    uptime_checker_regions: UptimeRules
    resource_types: dict[str, TypeRule]
    type_patterns: dict[str, TypeRule] = Field(default_factory=dict)

    @field_validator("type_patterns")
    @classmethod
    def _patterns_are_free(cls, v: dict[str, TypeRule]) -> dict[str, TypeRule]:
        # Why: a pattern covers types nobody listed; letting one name an estimator
        # would price types the estimator was never written for.
        for pattern, rule in v.items():
            if rule.free is None:
                raise ValueError(f"{pattern}: a type pattern may only mark types free")
        return v

    @property
    def as_of(self) -> date:
        """The oldest ``read`` date of any price, allowance or rule (what the estimate is as old as)."""
        sourced: list[_Sourced] = [*self.prices.values(), *self.free_tier.values(),
                                   self.autopilot_rules, self.alerting, self.uptime_checker_regions]
        return min(s.read for s in sourced)

    def age_problem(self, today: date) -> Optional[str]:
        """A sentence when the table is older than ``max_age_days`` on ``today``, else None."""
        age = (today - self.as_of).days
        if age > self.max_age_days:
            return (f"{PRICES_FILE}: prices read {self.as_of.isoformat()} are {age} days old "
                    f"(maxAgeDays {self.max_age_days}); re-read the pricing pages (docs/cost.md)")
        return None

    def price(self, key: str, region: str) -> Decimal:
        """USD per unit of price ``key`` in ``region``.

        Raises:
            KeyError: no such key, or the key has no price for ``region`` (message names both).
        """
        if key not in self.prices:
            raise KeyError(f"{PRICES_FILE}: prices.{key}: no such price")
        entry = self.prices[key]
        if entry.usd is not None:
            return entry.usd
        assert entry.regions is not None
        if region not in entry.regions:
            raise KeyError(f"{PRICES_FILE}: prices.{key}: no price for region {region!r} "
                           f"(priced: {sorted(entry.regions)}); add it from {entry.url}")
        return entry.regions[region]

    def allowance(self, key: str) -> Decimal:
        """The free-tier quantity ``key`` (raises KeyError naming the key when absent)."""
        if key not in self.free_tier:
            raise KeyError(f"{PRICES_FILE}: freeTier.{key}: no such allowance")
        return self.free_tier[key].quantity

    def rule_for(self, type_token: str) -> Optional[TypeRule]:
        """The entry for ``type_token``: exact first, then the first matching pattern; None when unpriced."""
        if type_token in self.resource_types:
            return self.resource_types[type_token]
        for pattern, rule in self.type_patterns.items():
            if fnmatch.fnmatchcase(type_token, pattern):
                return rule
        return None

    def regions_missing(self, region: str) -> list[str]:
        """Price keys with per-region figures that lack ``region``."""
        return sorted(k for k, p in self.prices.items() if p.regions is not None and region not in p.regions)


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        parts.append(f"[{item}]" if isinstance(item, int) else (("." if parts else "") + str(item)))
    return "".join(parts) or "(top level)"


def format_validation_error(exc: ValidationError, shown: str) -> ConfigError:
    """The first pydantic error as ``<file>: <key.path>: <message>`` (and how many more)."""
    errors = exc.errors(include_url=False)
    # A typo shows up as an unknown key and a missing one; the unknown key is the useful half.
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key = _key_path(tuple(first["loc"]))
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
        # A model-level check names its field first ("usd: ..."): make it part of the key.
        named = re.match(r"^([a-z][A-Za-z]*): (.*)$", message, re.S)
        if named:
            key, message = f"{key}.{named.group(1)}", named.group(2)
    if first["type"] == "missing":
        message = "missing (required key)"
    elif first["type"] == "extra_forbidden":
        message = "unknown key"
    elif "input" in first and not isinstance(first["input"], (dict, list)):
        message = f"{message}, got {first['input']!r}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return ConfigError(f"{shown}: {key}: {message}{more}")


def read_yaml(path: Path, shown: str) -> Any:
    """Parse a YAML file; ConfigError naming ``shown`` when missing or malformed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found ({path})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: not valid YAML: {exc}") from None


def parse_prices(data: Union[dict, Any], shown: str = PRICES_FILE) -> PriceTable:
    """Validate an already-parsed table; ConfigError ``<file>: <key>: <problem>``."""
    try:
        return PriceTable.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise format_validation_error(exc, shown) from None


def load_prices(root: Optional[Path] = None) -> PriceTable:
    """Read and validate ``<root>/environments/prices.yaml`` (default: this checkout).

    Raises:
        ConfigError: missing file, bad YAML or a schema violation, naming the file and key.
    """
    root = root or ROOT
    return parse_prices(read_yaml(root / PRICES_FILE, PRICES_FILE))
