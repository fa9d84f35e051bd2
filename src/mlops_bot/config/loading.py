"""Reading a repository's config into one `MlopsConfig` per model, with file:line:key errors.

A repository declares its models in one of three ways:
- `.github/mlops.yml` with `model:` at the top: one model (the original form, unchanged);
- `.github/mlops.yml` with `models:`, a list of entries; every other top-level key is a default
  each entry may replace (a key set in an entry replaces the shared one whole);
- one file per model under `.github/mlops/` (`*.yml`, `*.yaml`), each written like an entry; a
  `.github/mlops.yml` next to them (without `model:`) then holds the shared keys.
`bot` is repository-wide: only the top level of `.github/mlops.yml` sets it. With several models,
each deploys to its own environment: a model that does not set `rollout.environment` itself gets
`ENVIRONMENT-NAME` (the shared or default environment and its name as one word).

`parse_models` is pure (already-parsed documents in, configs out); `load_models` reads the files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlops_bot import config_yaml
from mlops_bot.config.schema import DEFAULT_CONFIG_PATH, MlopsConfig
from mlops_bot.errors import ConfigError
from mlops_bot.registry.tags import name_slug

REPOSITORY_WIDE = frozenset({"bot"})  # keys only the top level of .github/mlops.yml may set


@dataclass(frozen=True)
class ConfigDocument:
    """One parsed config file: `name` is how errors name it, `path` its repository-relative path
    (recorded on each model it declares, so a change of the file is a change of the model)."""

    name: str
    data: Any
    text: str | None = None
    path: str = DEFAULT_CONFIG_PATH


@dataclass(frozen=True)
class _Entry:
    document: ConfigDocument
    data: dict[str, Any]
    key: str  # how errors name the entry: "models[1]", or "" for a whole file
    at: tuple[str, ...]  # where the entry sits in its document, for error lines


def models_dir(path: str | Path) -> Path:
    """The folder of per-model files that goes with a config file: `.github/mlops.yml` -> `.github/mlops/`."""
    return Path(path).with_suffix("")


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


def _error(document: ConfigDocument, at: tuple[str, ...], key: str, detail: str) -> ConfigError:
    line = config_yaml.line_of(document.text, at, document.name) if document.text is not None else None
    return ConfigError(document.name, key, detail, line)


def _join(prefix: str, loc: Sequence[str]) -> str:
    return ".".join(([prefix] if prefix else []) + list(loc))


def _validate(entry: _Entry, shared: dict[str, Any], main: ConfigDocument | None) -> MlopsConfig:
    try:
        config = MlopsConfig.model_validate({**shared, **entry.data})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first["loc"])
        if loc[:1] == ("data_gates",):  # reported where the user wrote it
            loc = ("gates", "data", *loc[1:])
        more = len(exc.errors()) - 1
        detail = _describe(dict(first)) + (f" (and {more} more problem(s))" if more else "")
        if loc and loc[0] not in entry.data and loc[0] in shared and main is not None:
            # A shared key that does not fit this model: named where it is written.
            detail += f" (the shared key, as used by {entry.key or entry.document.name})"
            raise _error(main, loc, _join("", loc), detail) from None
        raise _error(entry.document, (*entry.at, *loc), _join(entry.key, loc), detail) from None
    return config.model_copy(update={"source": entry.document.path})


def parse_models(main: ConfigDocument | None, per_model: Sequence[ConfigDocument] = ()) -> list[MlopsConfig]:
    """Every model of a repository, in declaration order: `main` is `.github/mlops.yml` (None when
    absent), `per_model` the files under `.github/mlops/`. Raises ConfigError for the first problem."""
    shared: dict[str, Any] = {}
    entries: list[_Entry] = []
    folder = f"{models_dir(main.name)}/" if main is not None else "the per-model folder"
    if main is not None:
        data = main.data
        if not isinstance(data, dict):
            raise ConfigError(main.name, "", "expected a mapping at the top level (model:, train:, data:, "
                              "... for one model, or models: for several)")
        if "models" in data:
            if "model" in data:
                raise _error(main, ("model",), "model", "a file with models: names each model in its entry; "
                             "move this model: into the models: list")
            listed = data["models"]
            if not isinstance(listed, list) or not listed:
                raise _error(main, ("models",), "models", "expected a list of models, each a mapping with "
                             "model:, train:, data:, ...")
            shared = {key: value for key, value in data.items() if key != "models"}
            entries += [_Entry(main, entry, f"models[{i}]", ("models", str(i)))
                        for i, entry in enumerate(listed)]
        elif "model" in data or not per_model:
            if per_model:
                raise _error(main, ("model",), "model", f"names one model while {folder} holds per-model "
                             "files: move it into a file of its own there")
            entries.append(_Entry(main, data, "", ()))
        else:
            shared = dict(data)  # repository-wide keys and defaults for the per-model files
    entries += [_Entry(document, document.data, "", ()) for document in per_model]
    if not entries:
        raise ConfigError(folder, "", "no config: expected .github/mlops.yml or files under .github/mlops/")

    several = bool(per_model) or (main is not None and "models" in main.data)
    top = main.name if main is not None else DEFAULT_CONFIG_PATH
    configs: list[MlopsConfig] = []
    for entry in entries:
        if not isinstance(entry.data, dict):
            raise _error(entry.document, entry.at, entry.key or "", "expected a mapping (model:, train:, "
                         "data:, ...)")
        if several:
            for key in sorted(REPOSITORY_WIDE & set(entry.data)):
                raise _error(entry.document, (*entry.at, key), _join(entry.key, [key]),
                             f"{key} is repository-wide: set it at the top level of {top}")
        configs.append(_validate(entry, shared, main))
    if len(configs) > 1:
        configs = _own_environments(entries, configs)
    _check_unique(entries, configs)
    return configs


def _own_environments(entries: list[_Entry], configs: list[MlopsConfig]) -> list[MlopsConfig]:
    """Several models: each rolls out in its own deployment environment (rollout state, control
    signals and history are per environment)."""
    result = []
    for entry, config in zip(entries, configs, strict=True):
        rollout = entry.data.get("rollout")
        if isinstance(rollout, dict) and "environment" in rollout:
            result.append(config)
            continue
        environment = f"{config.rollout.environment}-{name_slug(config.model.name)}"
        result.append(config.model_copy(update={
            "rollout": config.rollout.model_copy(update={"environment": environment})}))
    return result


def _check_unique(entries: list[_Entry], configs: list[MlopsConfig]) -> None:
    names: dict[str, _Entry] = {}
    slugs: dict[str, str] = {}
    environments: dict[str, str] = {}
    for entry, config in zip(entries, configs, strict=True):
        name = config.model.name
        if name in names:
            first = names[name].key or names[name].document.name
            raise _error(entry.document, (*entry.at, "model", "name"), _join(entry.key, ["model", "name"]),
                         f"{name!r} is already the name of {first}: each model needs its own registry name")
        slug = name_slug(name)
        if slug in slugs:
            raise _error(entry.document, (*entry.at, "model", "name"), _join(entry.key, ["model", "name"]),
                         f"{name!r} and {slugs[slug]!r} are the same word ({slug!r}) in artifact and "
                         "environment names: rename one")
        environment = config.rollout.environment
        if environment in environments:
            raise _error(entry.document, (*entry.at, "rollout", "environment"),
                         _join(entry.key, ["rollout", "environment"]),
                         f"{environment!r} is also the rollout environment of model "
                         f"{environments[environment]!r}: each model needs its own")
        names[name], slugs[slug], environments[environment] = entry, name, name


def select_model(models: Sequence[MlopsConfig], name: str | None, source: str) -> MlopsConfig:
    """The model called `name`; without a name, the only model (several: an error listing them)."""
    names = ", ".join(config.model.name for config in models)
    if name is None:
        if len(models) == 1:
            return models[0]
        raise ConfigError(source, "models", f"declares {len(models)} models ({names}): pick one with "
                          "--model NAME")
    for config in models:
        if config.model.name == name:
            return config
    raise ConfigError(source, "models", f"no model named {name!r}; the models are: {names}")


def parse_config(data: Any, source: str = DEFAULT_CONFIG_PATH, text: str | None = None,
                 model: str | None = None) -> MlopsConfig:
    """Validate one already-parsed config file and pick `model` (default: its only model)."""
    return select_model(parse_models(ConfigDocument(source, data, text, path=source)), model, source)


# -------------------------------------------------------------------------------------------- files
def config_exists(path: str | Path) -> bool:
    """Whether a config file, or its folder of per-model files, is there."""
    return Path(path).is_file() or bool(_model_files(models_dir(path)))


def _model_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())


def _read(path: Path, root: Path) -> ConfigDocument:
    document = config_yaml.load_file(path)  # bounded: size, UTF-8, depth, aliases, duplicate keys
    try:
        relative = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        relative = path.as_posix()
    return ConfigDocument(str(path), document.data, document.text, relative)


def load_models(path: str | Path = DEFAULT_CONFIG_PATH, root: str | Path | None = None) -> list[MlopsConfig]:
    """Every model of the config at `path` and of its per-model folder (`.github/mlops.yml` and
    `.github/mlops/*.yml`). `root` (default: the repository holding the file) anchors relative paths."""
    path = Path(path)
    files = _model_files(models_dir(path))
    root = Path(root) if root is not None else _default_root(path)
    main = _read(path, root) if path.exists() or not files else None  # absent and alone: "file not found"
    configs = parse_models(main, [_read(file, root) for file in files])
    return [config.model_copy(update={"root": root}) for config in configs]


def load_config(path: str | Path = DEFAULT_CONFIG_PATH, root: str | Path | None = None,
                model: str | None = None) -> MlopsConfig:
    """Read and validate a config and pick `model` (default: the only one; several: an error naming
    them). `root` (default: the repository holding the file) anchors relative data paths."""
    return select_model(load_models(path, root), model, str(path))


def _default_root(path: Path) -> Path:
    """`.github/mlops.yml` and `.github/mlops/*.yml` live under the repository root; any other file
    anchors to its folder."""
    parent = path.resolve().parent
    if parent.name == ".github":
        return parent.parent
    if parent.parent.name == ".github" and parent.name == "mlops":
        return parent.parent.parent
    return parent
