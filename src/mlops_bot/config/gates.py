"""`gates` (metric gates and `gates.data`), `baseline` and `bootstrap`: what decides a verdict."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from mlops_bot.config.fields import Strict


class GateRule(Strict):
    """Rules for one metric. `max_drop` is relative to the baseline value; `max_drop_ci` fails only
    when the drop is significant: the whole confidence interval of the drop lies above the value."""

    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(default=None, ge=0)
    max_drop_ci: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_rule(self) -> GateRule:
        if all(v is None for v in (self.min, self.max, self.max_drop, self.max_drop_ci)):
            raise ValueError("a gate needs at least one of min, max, max_drop, max_drop_ci")
        return self


# --------------------------------------------------------------------------------------- data gates
DataCheckName = Literal[
    "missing_columns",
    "extra_columns",
    "dtype_change",
    "missing_share",
    "out_of_range",
    "unseen_categories",
    "constant_columns",
    "duplicated_rows",
    "leakage",
    "target_balance",
]
DataCheckAction = Literal["fail", "warn", "off"]
# What each data check does when nobody configures it: (action, max). `max` is the largest value
# that still passes, in the check's own unit (docs/data-validation.md); None = the check has no number.
DATA_CHECK_DEFAULTS: dict[str, tuple[DataCheckAction, float | None]] = {
    "missing_columns": ("warn", None),
    "extra_columns": ("warn", None),
    "dtype_change": ("fail", None),
    "missing_share": ("fail", 0.10),  # growth of the missing share, in points (0.10 = 10 points)
    "out_of_range": ("warn", 0.01),  # share of non-missing values outside the reference [min, max]
    "unseen_categories": ("fail", 0.01),  # share of non-missing values not among the reference's
    "constant_columns": ("warn", None),
    "duplicated_rows": ("warn", 0.05),  # share of rows that repeat an earlier row
    "leakage": ("fail", 0.0),  # share of holdout rows (or ids) also in the training data
    "target_balance": ("warn", 0.10),  # largest change of a class share, in points
}
COLUMN_DATA_CHECKS: tuple[str, ...] = (
    "dtype_change",
    "missing_share",
    "out_of_range",
    "unseen_categories",
    "constant_columns",
)


class DataCheckRule(Strict):
    """One data check's gate: `fail` fails the verdict, `warn` only shows a row, `off` skips it.
    Written as a mapping (`{action: warn, max: 0.2}`) or just the action (`warn`)."""

    action: DataCheckAction | None = None
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `off` as false: accept it as the action it was meant to be.
        if isinstance(value, str) or value is False:
            value = {"action": value}
        if isinstance(value, dict) and value.get("action") is False:
            value = {**value, "action": "off"}
        return value


class ColumnDataGates(Strict):
    """Per-column overrides of the column-level data checks (unset fields inherit `gates.data`)."""

    dtype_change: DataCheckRule | None = None
    missing_share: DataCheckRule | None = None
    out_of_range: DataCheckRule | None = None
    unseen_categories: DataCheckRule | None = None
    constant_columns: DataCheckRule | None = None


class DataGates(Strict):
    """`gates.data`: the data validation checks and their gates (docs/data-validation.md)."""

    enabled: bool = True
    missing_columns: DataCheckRule | None = None
    extra_columns: DataCheckRule | None = None
    dtype_change: DataCheckRule | None = None
    missing_share: DataCheckRule | None = None
    out_of_range: DataCheckRule | None = None
    unseen_categories: DataCheckRule | None = None
    constant_columns: DataCheckRule | None = None
    duplicated_rows: DataCheckRule | None = None
    leakage: DataCheckRule | None = None
    target_balance: DataCheckRule | None = None
    columns: dict[str, ColumnDataGates] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list, description="columns no data check looks at")

    def rule(self, check: str, column: str | None = None) -> tuple[DataCheckAction, float | None]:
        """The effective (action, max) of a check, for a column when given: the column's override,
        then `gates.data.CHECK`, then the default."""
        action, limit = DATA_CHECK_DEFAULTS[check]
        layers: list[DataCheckRule | None] = [getattr(self, check)]
        if column is not None and column in self.columns and check in COLUMN_DATA_CHECKS:
            layers.append(getattr(self.columns[column], check))
        for layer in layers:
            if layer is not None:
                action = layer.action or action
                limit = layer.max if layer.max is not None else limit
        return action, limit


class BaselineSection(Strict):
    """Where the model to compare against comes from, in order of preference."""

    stage: str = "production"
    metrics_file: str | None = Field(
        default=None, description="metrics JSON committed on the base branch, used when no model is in stage"
    )


class BootstrapSection(Strict):
    samples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
