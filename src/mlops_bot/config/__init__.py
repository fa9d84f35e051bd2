"""The schema of `.github/mlops.yml` (one model, a `models:` list, or files under `.github/mlops/`)
and its loader, one module per concern:

- `fields`: the strict base model, durations, stage names
- `model`: `model`, `train`, `data` and custom `metrics` (what one model is)
- `gates`: metric gates, `gates.data`, `baseline`, `bootstrap`
- `analyses`: `drift`, `fairness`; `report`: the comment's images
- `registry`, `rollout`, `monitor`, `bot`: promotion policy, canary deploys, monitoring, the webhook bot
- `schema`: `MlopsConfig`, one model's whole config
- `paths`: the `model.paths` globs and which models a change touches
- `loading`: files -> one `MlopsConfig` per model, errors naming file, line and key

Everything is importable from `mlops_bot.config`.
"""

from mlops_bot.config.analyses import ColumnDriftOverride, DriftMethod, DriftSection, FairnessSection
from mlops_bot.config.bot import BotSection, DispatchEvent
from mlops_bot.config.fields import Duration, Strict, check_stage_name, parse_duration
from mlops_bot.config.gates import (
    COLUMN_DATA_CHECKS,
    DATA_CHECK_DEFAULTS,
    BaselineSection,
    BootstrapSection,
    ColumnDataGates,
    DataCheckAction,
    DataCheckName,
    DataCheckRule,
    DataGates,
    GateRule,
)
from mlops_bot.config.loading import (
    REPOSITORY_WIDE,
    ConfigDocument,
    config_exists,
    load_config,
    load_models,
    models_dir,
    parse_config,
    parse_models,
    select_model,
)
from mlops_bot.config.model import (
    BuiltinPipeline,
    CustomMetric,
    DataSection,
    MetricEntry,
    ModelSection,
    Preprocessing,
    TrainSection,
)
from mlops_bot.config.monitor import MonitorSection
from mlops_bot.config.paths import changed_models, check_path_pattern, path_matches, touches
from mlops_bot.config.registry import RegistrySection, StagePolicy
from mlops_bot.config.report import ReportSection
from mlops_bot.config.rollout import (
    PrometheusQueryName,
    RolloutGates,
    RolloutKServe,
    RolloutPrometheus,
    RolloutSection,
    RolloutStep,
)
from mlops_bot.config.schema import DEFAULT_CONFIG_PATH, MlopsConfig
from mlops_bot.permissions import PERMISSION_ORDER, Permission

__all__ = [
    "COLUMN_DATA_CHECKS", "DATA_CHECK_DEFAULTS", "DEFAULT_CONFIG_PATH", "PERMISSION_ORDER", "REPOSITORY_WIDE",
    "BaselineSection", "BootstrapSection", "BotSection", "BuiltinPipeline", "ColumnDataGates",
    "ColumnDriftOverride", "ConfigDocument", "CustomMetric", "DataCheckAction", "DataCheckName",
    "DataCheckRule", "DataGates", "DataSection", "DispatchEvent", "DriftMethod", "DriftSection", "Duration",
    "FairnessSection", "GateRule", "MetricEntry", "MlopsConfig", "ModelSection", "MonitorSection",
    "Permission", "Preprocessing", "PrometheusQueryName", "RegistrySection", "ReportSection",
    "RolloutGates", "RolloutKServe", "RolloutPrometheus", "RolloutSection", "RolloutStep", "StagePolicy",
    "Strict", "TrainSection", "changed_models", "check_path_pattern", "check_stage_name", "config_exists",
    "load_config", "load_models", "models_dir", "parse_config", "parse_duration", "parse_models",
    "path_matches", "select_model", "touches",
]
