"""The schema of `.github/mlops.yml` and its loader.

Every section is a pydantic model with `extra="forbid"`, so a typo is an error rather than a
silently ignored key. Errors name the file, the line, the key path and what was expected.
Sections owned by later features (registry policy, rollout, monitoring, bot) live here too, so that
one file validates the whole config in one pass.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops_bot import config_yaml
from mlops_bot.errors import ConfigError
from mlops_bot.permissions import PERMISSION_ORDER as PERMISSION_ORDER  # re-exported
from mlops_bot.permissions import REPOSITORY_FLOOR, permission_at_least
from mlops_bot.permissions import Permission as Permission  # re-exported
from mlops_bot.registry.tags import NAME_RE, is_valid_name

DEFAULT_CONFIG_PATH = ".github/mlops.yml"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: str | float | int) -> float:
    """'90s', '5m', '24h', '1.5d' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m' or '24h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"expected a duration such as '30s', '5m' or '24h', got {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------- model
class ModelSection(_Strict):
    """What the model is; the free-text fields feed the model card."""

    name: str = Field(description="registry name (registry/tags.py grammar; monorepo form 'dir:name')")
    task: Literal["classification", "regression"]
    positive_label: int | str | bool = 1
    description: str = ""
    intended_use: str = ""
    limitations: str = ""
    owners: list[str] = Field(default_factory=list)
    trusted_types: list[str] = Field(
        default_factory=list,
        description="exact type names (package.module.Type) a skops model file of this repository may "
        "need beyond mlops-bot's per-framework allow-list",
    )

    @field_validator("name")
    @classmethod
    def _registry_name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError("expected a registry name: letters, digits, '-', '_', '/', starting and ending "
                             "with a letter or digit; monorepo form 'dir:name'")
        return value


# --------------------------------------------------------------------------------------------- train
class Preprocessing(_Strict):
    """How the built-in pipeline prepares columns before the estimator."""

    impute_numeric: Literal["mean", "median", "most_frequent", "none"] = "median"
    scale_numeric: bool = True
    encode_categorical: Literal["onehot", "ordinal"] = "onehot"


class BuiltinPipeline(_Strict):
    """A scikit-learn pipeline described in YAML instead of code."""

    estimator: str = Field(
        description="short name (e.g. random_forest, logistic_regression, gradient_boosting, "
        "hist_gradient_boosting, ridge, linear_regression) or a dotted sklearn class path"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    numeric_features: list[str] = Field(default_factory=list)
    categorical_features: list[str] = Field(default_factory=list)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)


class TrainSection(_Strict):
    """Either a user command (with its output contract) or a built-in pipeline."""

    command: str | None = None
    timeout: Duration = 1800.0
    workdir: str = "."
    model_path: str | None = Field(
        default=None, description="where the command writes the model (skops by default)"
    )
    predictions_path: str | None = Field(
        default=None, description="where the command writes holdout predictions (CSV/Parquet)"
    )
    builtin: BuiltinPipeline | None = None
    params_file: str | None = Field(
        default=None,
        description="YAML/JSON file of training parameters the command reads (e.g. params.yaml); shown "
        "base vs head in the report",
    )
    env: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list,
        description="environment variables passed to the command beyond the allow-list (names only)",
    )

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _one_way(self) -> TrainSection:
        if (self.command is None) == (self.builtin is None):
            raise ValueError("set exactly one of 'command' or 'builtin'")
        if self.command is not None and not (self.model_path or self.predictions_path):
            raise ValueError(
                "a training command must declare 'model_path' and/or 'predictions_path' "
                "(the files it writes)"
            )
        return self


# ---------------------------------------------------------------------------------------------- data
class DataSection(_Strict):
    """Where the data lives and what its columns mean."""

    train: str
    holdout: str
    target: str
    features: list[str] | None = Field(
        default=None, description="feature columns; default: all but target, id and prediction columns"
    )
    sensitive: list[str] = Field(default_factory=list)
    id: str | None = None


# -------------------------------------------------------------------------------------------- gates
class GateRule(_Strict):
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


class DataCheckRule(_Strict):
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


class ColumnDataGates(_Strict):
    """Per-column overrides of the column-level data checks (unset fields inherit `gates.data`)."""

    dtype_change: DataCheckRule | None = None
    missing_share: DataCheckRule | None = None
    out_of_range: DataCheckRule | None = None
    unseen_categories: DataCheckRule | None = None
    constant_columns: DataCheckRule | None = None


class DataGates(_Strict):
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


class BaselineSection(_Strict):
    """Where the model to compare against comes from, in order of preference."""

    stage: str = "production"
    metrics_file: str | None = Field(
        default=None, description="metrics JSON committed on the base branch, used when no model is in stage"
    )


class BootstrapSection(_Strict):
    samples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


# -------------------------------------------------------------------------------------------- drift
DriftMethod = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]


class ColumnDriftOverride(_Strict):
    method: DriftMethod | None = None
    threshold: float | None = Field(default=None, ge=0)
    type: Literal["numerical", "categorical"] | None = None


class DriftSection(_Strict):
    enabled: bool = True
    columns: dict[str, ColumnDriftOverride] = Field(default_factory=dict)
    ignore: list[str] = Field(default_factory=list)
    correction: Literal["none", "bonferroni", "benjamini-hochberg"] = "none"
    psi_flavour: Literal["evidently", "classic"] = "evidently"
    drift_share: float = Field(default=0.5, gt=0, le=1)
    plots: int = Field(default=3, ge=0, description="distribution plots for the most drifted columns")


# ----------------------------------------------------------------------------------------- fairness
class FairnessSection(_Strict):
    enabled: bool = True
    min_group_size: int = Field(default=30, ge=1)
    missing: Literal["error", "group"] = "error"
    method: Literal["between_groups", "to_overall"] = "between_groups"
    bootstrap: bool = True
    bootstrap_samples: int = Field(default=1000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


# ------------------------------------------------------------------------------------------- report
class ReportSection(_Strict):
    """How the PR comment shows the report's images (docs/report-images.md)."""

    images: Literal["branch", "artifact", "none"] = Field(
        default="branch",
        description="branch: commit them to `assets_branch` and embed them by commit URL; artifact: name "
        "the files (they travel with the workflow artifact); none: leave them out of the comment",
    )
    assets_branch: str = Field(default="mlops-bot/assets", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    keep_commits_per_pr: int = Field(default=3, ge=1, le=100)


# ----------------------------------------------------------------------------------------- registry
def _check_stage_name(stage: str) -> str:
    if not NAME_RE.match(stage):
        raise ValueError(f"{stage!r} is not a stage name the registry can tag (letters, digits, '-', '_', "
                         "'/', starting and ending with a letter or digit)")
    return stage


class StagePolicy(_Strict):
    permission: Permission = "write"
    require_gates: bool = True
    approvers: list[str] = Field(default_factory=list)


class RegistrySection(_Strict):
    """Promotion policy: the ordered stages and who may promote to each."""

    stages: list[str] = Field(default_factory=lambda: ["dev", "staging", "production"], min_length=1)
    allow_skip: bool = False
    policy: dict[str, StagePolicy] = Field(default_factory=dict)
    remote: str = "origin"

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, value: list[str]) -> list[str]:
        for stage in value:
            _check_stage_name(stage)
        return value

    @model_validator(mode="after")
    def _known_stages(self) -> RegistrySection:
        unknown = sorted(set(self.policy) - set(self.stages))
        if unknown:
            raise ValueError(f"policy names stages not in 'stages': {', '.join(unknown)}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages must be unique")
        return self

    def stage_policy(self, stage: str) -> StagePolicy:
        return self.policy.get(stage, StagePolicy())


# ------------------------------------------------------------------------------------------- deploy
class RolloutStep(_Strict):
    """Set the canary weight, then hold for a duration or until a manual /promote."""

    weight: int = Field(ge=0, le=100)
    hold: float | Literal["manual"] = 60.0

    @field_validator("hold", mode="before")
    @classmethod
    def _hold(cls, value: Any) -> float | str:
        return value if value == "manual" else parse_duration(value)


class RolloutGates(_Strict):
    min_success_rate: float | None = Field(default=0.99, ge=0, le=1)
    max_p99_latency_ms: float | None = Field(default=500.0, gt=0)
    max_p99_latency_ratio: float | None = Field(default=1.5, gt=0, description="canary p99 / stable p99")
    max_prediction_drift: float | None = Field(
        default=0.2, ge=0, description="Jensen-Shannon distance between canary and stable predictions"
    )
    min_requests: int = Field(default=50, ge=0, description="per step; fewer is inconclusive")


PrometheusQueryName = Literal["requests", "errors", "client_errors", "latency_buckets", "latency_sum",
                              "predictions"]


class RolloutPrometheus(_Strict):
    """Where the cluster targets read the gates' figures (deploy/prometheus.py has the defaults)."""

    url: str = Field(description="Prometheus base URL, e.g. http://prometheus.monitoring:9090")
    queries: dict[PrometheusQueryName, str] = Field(
        default_factory=dict,
        description="PromQL templates ($model, $namespace, $version) replacing the defaults",
    )
    timeout: Duration = 10.0

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)


class RolloutKServe(_Strict):
    """The KServe target: where the InferenceService lives and what it runs."""

    namespace: str = "default"
    image: str = Field(default="ghcr.io/mlops-bot/mlops-bot-server:latest",
                       description="the model server image (built by the release workflow)")
    token_secret: str | None = Field(
        default=None, description="Secret with key `token` for private release assets"
    )
    min_replicas: int = Field(default=1, ge=0)
    storage_uri: str = Field(
        default="https://github.com/$repository/releases/download/$tag/model.skops",
        description="where the pod downloads the version's model ($repository, $tag, $model, $version)",
    )


class RolloutSection(_Strict):
    environment: str = "production"
    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(weight=10, hold=30), RolloutStep(weight=50, hold=30)],
        min_length=1,
    )
    gates: RolloutGates = Field(default_factory=RolloutGates)
    interval: Duration = 5.0
    initial_delay: Duration = 0.0
    failure_limit: int = Field(default=1, ge=1)
    progress_deadline: Duration = 1800.0
    on_inconclusive: Literal["pause", "abort"] = "pause"
    stage: str = "production"
    shadow: bool = False
    prometheus: RolloutPrometheus | None = None
    kserve: RolloutKServe = Field(default_factory=RolloutKServe)

    @field_validator("stage")
    @classmethod
    def _stage_name(cls, value: str) -> str:
        return _check_stage_name(value)

    @field_validator("interval", "initial_delay", "progress_deadline", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)


# ------------------------------------------------------------------------------------------ monitor
class MonitorSection(_Strict):
    window: Duration = 86400.0
    drift_share: float = Field(default=0.5, gt=0, le=1)
    prediction_drift: float = Field(default=0.1, ge=0, description="Jensen-Shannon distance threshold")
    max_metric_drop: dict[str, float] = Field(default_factory=dict)
    min_rows: int = Field(default=100, ge=1)
    cooldown: Duration = 86400.0
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    log_dir: str = ".mlops/predictions"
    rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    rotate_seconds: Duration = 86400.0
    retrain_event: str = "mlops-retrain"

    @field_validator("window", "cooldown", "rotate_seconds", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)


# ---------------------------------------------------------------------------------------------- bot
DispatchEvent = Literal["pull_request", "push"]
_DISPATCH_EVENTS: tuple[DispatchEvent, ...] = ("pull_request", "push")


class BotSection(_Strict):
    permission: Permission = "write"
    commands: dict[str, Permission] = Field(default_factory=dict)
    ignore_bots: bool = True
    handle_edits: bool = False
    dispatch_on: list[DispatchEvent] = Field(
        default_factory=lambda: list(_DISPATCH_EVENTS),
        description="events the webhook bot turns into repository_dispatch (mlops-validate, mlops-deploy); "
        "empty when the workflows already trigger on them",
    )
    retrain_cooldown: Duration = Field(default=1800.0, description="least time between two /retrain "
                                       "of one model (0: no cool-down)")

    @field_validator("retrain_cooldown", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("permission")
    @classmethod
    def _floor(cls, value: Permission) -> Permission:
        if not permission_at_least(value, REPOSITORY_FLOOR):
            raise ValueError(f"commands need at least {REPOSITORY_FLOOR!r} (the bot does no repository "
                             "work for accounts below it: on a public repository everyone has 'read')")
        return value

    @field_validator("commands")
    @classmethod
    def _known_commands(cls, value: dict[str, Permission]) -> dict[str, Permission]:
        from mlops_bot.bot.commands import COMMANDS  # the command list lives with the parser

        for name, permission in value.items():
            if name not in COMMANDS:
                raise ValueError(f"unknown command {name!r} (commands: {', '.join(COMMANDS)})")
            if name != "help" and not permission_at_least(permission, REPOSITORY_FLOOR):
                raise ValueError(f"/{name} needs at least {REPOSITORY_FLOOR!r}, got {permission!r} (the bot "
                                 "does no repository work for accounts below it)")
        return value


# ------------------------------------------------------------------------------------------ metrics
_FUNCTION_REF = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class CustomMetric(_Strict):
    """A metric function in the repository: `module:function` taking (y_true, y_pred) and returning
    a number. It runs in a subprocess where the training command runs (same working directory and
    environment), on the same holdout and bootstrap resamples as the built-in metrics."""

    function: str = Field(pattern=_FUNCTION_REF)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    greater_is_better: bool = True

    @property
    def metric_name(self) -> str:
        return self.name or self.function.rsplit(":", 1)[1]


MetricEntry = CustomMetric | str


# --------------------------------------------------------------------------------------------- root
class MlopsConfig(_Strict):
    """The whole of `.github/mlops.yml`."""

    version: Literal[1] = 1
    model: ModelSection
    train: TrainSection
    data: DataSection
    metrics: list[MetricEntry] = Field(
        default_factory=list,
        description="built-in metric names, or custom metrics (`module:function` or a mapping); "
        "default: the task's metrics",
    )
    gates: dict[str, GateRule] = Field(default_factory=dict)
    # `gates.data` in the file: lifted out of `gates` (whose other keys are metric names) on load.
    data_gates: DataGates = Field(default_factory=DataGates)
    seed: int = 0
    baseline: BaselineSection = Field(default_factory=BaselineSection)
    bootstrap: BootstrapSection = Field(default_factory=BootstrapSection)
    drift: DriftSection = Field(default_factory=DriftSection)
    fairness: FairnessSection = Field(default_factory=FairnessSection)
    report: ReportSection = Field(default_factory=ReportSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)
    rollout: RolloutSection = Field(default_factory=RolloutSection)
    monitor: MonitorSection = Field(default_factory=MonitorSection)
    bot: BotSection = Field(default_factory=BotSection)

    # Where the file was read from: relative data paths resolve against the repository root.
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _lift_data_gates(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("gates"), dict) and "data" in data["gates"]:
            if "data_gates" in data:
                raise ValueError("set data gates under gates.data only")
            gates = dict(data["gates"])
            data = {**data, "gates": gates, "data_gates": gates.pop("data")}
        return data

    @field_validator("metrics", mode="before")
    @classmethod
    def _custom_strings(cls, value: Any) -> Any:
        """`module:function` in the list is a custom metric named after the function."""
        if isinstance(value, list):
            return [{"function": v} if isinstance(v, str) and ":" in v else v for v in value]
        return value

    @model_validator(mode="after")
    def _unique_metric_names(self) -> MlopsConfig:
        names = self.metric_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(
                f"metrics: name(s) listed twice: {', '.join(duplicated)} (give custom metrics a name:)"
            )
        return self

    @property
    def metric_names(self) -> list[str]:
        """Every metric listed under `metrics:`, built-in and custom, in order."""
        return [m.metric_name if isinstance(m, CustomMetric) else m for m in self.metrics]

    @property
    def custom_metrics(self) -> list[CustomMetric]:
        return [m for m in self.metrics if isinstance(m, CustomMetric)]

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path


# -------------------------------------------------------------------------------------------- loader
def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/config.md)"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if "input" in error and kind not in ("model_type", "dict_type"):
        return f"{message} (got {error['input']!r})"
    return message


def parse_config(data: Any, source: str = DEFAULT_CONFIG_PATH, text: str | None = None) -> MlopsConfig:
    """Validate already-parsed YAML data. Raises ConfigError for the first problem found."""
    if not isinstance(data, dict):
        raise ConfigError(source, "", "expected a mapping at the top level (model:, train:, data:, ...)")
    try:
        return MlopsConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        if loc[:1] == ("data_gates",):  # reported where the user wrote it
            loc = ("gates", "data", *loc[1:])
        line = config_yaml.line_of(text, loc, source) if text is not None else None
        key = ".".join(loc)
        more = len(exc.errors()) - 1
        detail = _describe(dict(first)) + (f" (and {more} more problem(s))" if more else "")
        raise ConfigError(source, key, detail, line) from None


def load_config(path: str | Path = DEFAULT_CONFIG_PATH, root: str | Path | None = None) -> MlopsConfig:
    """Read and validate a config file. `root` (default: the repository holding the file) anchors
    relative data paths."""
    path = Path(path)
    document = config_yaml.load_file(path)  # bounded: size, UTF-8, depth, aliases, duplicate keys
    config = parse_config(document.data, str(path), document.text)
    if root is None:
        root = _default_root(path)
    return config.model_copy(update={"root": Path(root)})


def _default_root(path: Path) -> Path:
    """`.github/mlops.yml` lives under the repository root; any other file anchors to its folder."""
    parent = path.resolve().parent
    return parent.parent if parent.name == ".github" else parent
