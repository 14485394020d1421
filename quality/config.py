"""The `quality:` section of the rules file: batch thresholds, schema-drift policies, accepted currencies.

Read from `RULES_FILE` (default `dagster_project/rules.yaml`) through `RulesResource` on every call, so a
fix in the file applies to the next run, and so every loader and check sees the same rules without each
asset needing a `rules` resource.
"""

from __future__ import annotations

import os
from typing import Literal

import pydantic
from pydantic import Field

from resources.rules import RulesResource

SchemaPolicy = Literal["evolve", "warn", "freeze"]
DEFAULT = "default"


class QualityRules(pydantic.BaseModel):
    """Per-dataset settings are maps of table name to value, with a `default` entry for the rest."""

    model_config = pydantic.ConfigDict(extra="forbid")

    max_bad_row_fraction: dict[str, float] = Field(default_factory=lambda: {DEFAULT: 0.01})
    tolerated_bad_rows: int = Field(default=0, ge=0)
    schema_policy: dict[str, SchemaPolicy] = Field(default_factory=lambda: {DEFAULT: "warn"})
    extra_currencies: list[str] = Field(default_factory=list)

    @pydantic.field_validator("max_bad_row_fraction")
    @classmethod
    def _fractions(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"fractions must be between 0 and 1, got {bad}")
        return value

    def threshold(self, table: str) -> float:
        """The largest share of bad rows a batch of `table` may have and still merge."""
        return self.max_bad_row_fraction.get(table, self.max_bad_row_fraction.get(DEFAULT, 0.01))

    def threshold_setting(self, table: str) -> str:
        """The name of the setting `threshold(table)` came from, for messages."""
        key = table if table in self.max_bad_row_fraction else DEFAULT
        return f"quality.max_bad_row_fraction.{key}"

    def refuses(self, table: str, bad: int, total: int) -> bool:
        """True when a batch with `bad` of `total` rows failing is refused whole."""
        return bad > self.tolerated_bad_rows and total > 0 and bad / total > self.threshold(table)

    def policy(self, table: str) -> SchemaPolicy:
        return self.schema_policy.get(table, self.schema_policy.get(DEFAULT, "warn"))


def quality_rules(path: str | None = None) -> QualityRules:
    """The `quality` section of `path` (default: env `RULES_FILE`, else the project's rules.yaml)."""
    rules = RulesResource(path=path or os.environ.get("RULES_FILE") or RulesResource().path)
    return rules.section("quality", QualityRules)
