"""Training parameters, base and head side by side (the counterpart of `dvc params diff`).

The head's parameters are the built-in pipeline's (`estimator`, `params.*`, feature lists and
preprocessing) or a params file the training command reads (`train.params_file`, YAML or JSON, such
as DVC's `params.yaml`), flattened to dotted keys. The base's come from the baseline's report.json
(a registered version's, or the one beside `--base-model`), where every validation stores its own.
`params_diff` is pure: two flat mappings in, rows out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_bot import config_yaml
from mlops_bot.config import MlopsConfig
from mlops_bot.errors import ConfigError

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class ParamRow:
    name: str
    base: Scalar
    head: Scalar
    changed: bool
    added: bool = False
    removed: bool = False


def flatten(data: Any, prefix: str = "") -> dict[str, Scalar]:
    """Nested mappings to dotted keys (DVC's `params diff` form); lists kept as JSON text."""
    out: dict[str, Scalar] = {}
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten(value, name))
        return out
    if isinstance(data, list | tuple):
        out[prefix] = json.dumps(list(data), default=str)
    elif data is None or isinstance(data, str | int | float | bool):
        out[prefix] = data
    else:
        out[prefix] = str(data)
    return out


def training_params(config: MlopsConfig) -> dict[str, Scalar]:
    """The head's parameters: the built-in pipeline's, or the params file's."""
    if config.train.params_file:
        path = config.resolve(config.train.params_file)
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(str(path), "", "file not found (train.params_file)") from None
            except (OSError, ValueError) as exc:
                raise ConfigError(str(path), "", f"not valid JSON (train.params_file): {exc}") from None
        else:
            data = config_yaml.load_file(path).data
        if not isinstance(data, Mapping):
            raise ConfigError(str(path), "", "train.params_file must hold a mapping of parameter names")
        return flatten(data)
    builtin = config.train.builtin
    if builtin is None:
        return {}
    return flatten(builtin.model_dump(mode="json"))


def params_from_report(path: Path) -> dict[str, Scalar] | None:
    """The head params stored in a report.json; None when the file or the field is absent."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    params = data.get("params") if isinstance(data, dict) else None
    head = params.get("head") if isinstance(params, dict) else None
    return flatten(head) if isinstance(head, dict) else None


def params_diff(base: Mapping[str, Scalar] | None, head: Mapping[str, Scalar]) -> list[ParamRow]:
    """Every parameter of either side, sorted by name; `changed` when the values differ."""
    base = base or {}
    rows = []
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        rows.append(
            ParamRow(name, old, new, changed=name not in base or name not in head or old != new,
                     added=name not in base, removed=name not in head)
        )
    return rows
