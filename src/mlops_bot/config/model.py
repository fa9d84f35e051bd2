"""The sections that say what one model is: `model`, `train`, `data` and custom `metrics`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops_bot.config.fields import Duration, Strict, parse_duration
from mlops_bot.config.paths import check_path_pattern
from mlops_bot.registry.tags import is_valid_name


class ModelSection(Strict):
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
    paths: list[str] = Field(
        default_factory=list,
        description="repository paths (globs: `*`, `**`, `?`; a trailing `/` means everything below) "
        "whose change means this model changed; empty: every change does",
    )

    @field_validator("name")
    @classmethod
    def _registry_name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError("expected a registry name: letters, digits, '-', '_', '/', starting and ending "
                             "with a letter or digit; monorepo form 'dir:name'")
        return value

    @field_validator("paths")
    @classmethod
    def _repository_paths(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_path_pattern(pattern)
        return value


# --------------------------------------------------------------------------------------------- train
class Preprocessing(Strict):
    """How the built-in pipeline prepares columns before the estimator."""

    impute_numeric: Literal["mean", "median", "most_frequent", "none"] = "median"
    scale_numeric: bool = True
    encode_categorical: Literal["onehot", "ordinal"] = "onehot"


class BuiltinPipeline(Strict):
    """A scikit-learn pipeline described in YAML instead of code."""

    estimator: str = Field(
        description="short name (e.g. random_forest, logistic_regression, gradient_boosting, "
        "hist_gradient_boosting, ridge, linear_regression) or a dotted sklearn class path"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    numeric_features: list[str] = Field(default_factory=list)
    categorical_features: list[str] = Field(default_factory=list)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)


class TrainSection(Strict):
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
class DataSection(Strict):
    """Where the data lives and what its columns mean."""

    train: str
    holdout: str
    target: str
    features: list[str] | None = Field(
        default=None, description="feature columns; default: all but target, id and prediction columns"
    )
    sensitive: list[str] = Field(default_factory=list)
    id: str | None = None


# ------------------------------------------------------------------------------------------ metrics
_FUNCTION_REF = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"


class CustomMetric(Strict):
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
