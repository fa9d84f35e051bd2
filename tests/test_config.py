"""Config errors: unknown keys, wrong types, missing sections and bad YAML name file, line and key
and make the CLI exit with code 2 and one line (no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.config import load_config, parse_duration
from mlops_bot.errors import ConfigError

GOOD = """\
model:
  name: churn
  task: classification
train:
  builtin:
    estimator: logistic_regression
data:
  train: train.csv
  holdout: holdout.csv
  target: label
gates:
  accuracy:
    min: 0.7
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".github" / "mlops.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_loads_with_defaults_and_repo_root(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD))
    assert config.model.name == "churn"
    assert config.gates["accuracy"].min == 0.7
    assert config.bootstrap.samples == 1000 and config.seed == 0
    assert config.root == tmp_path.resolve()
    assert config.resolve("train.csv") == tmp_path.resolve() / "train.csv"


@pytest.mark.parametrize(
    ("text", "key", "line", "expect"),
    [
        (GOOD.replace("  target: label", "  target: label\n  tagret: x"), "data.tagret", 11, "unknown key"),
        (GOOD.replace("    min: 0.7", "    min: high"), "gates.accuracy.min", 13, "number"),
        (GOOD.replace("  task: classification", "  task: clustering"), "model.task", 3, "classification"),
        ("\n".join(GOOD.splitlines()[:6]) + "\n", "data", None, "required key is missing"),
        (GOOD.replace("    min: 0.7", "    {}"), "gates.accuracy", None, ""),
        (GOOD.replace("  builtin:\n    estimator: logistic_regression", "  command: python t.py"),
         "train", 4, "model_path"),
    ],
)
def test_config_errors_name_file_line_and_key(tmp_path: Path, text: str, key: str, line: int | None,
                                              expect: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert error.key == key
    assert error.path == str(path)
    if line is not None:
        assert error.line == line
        assert str(error).startswith(f"{path}:{line}: {key}: ")
    assert expect in str(error)


def test_bad_yaml_reports_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("  name: churn", "  name: [churn"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line is not None and "invalid YAML" in str(info.value)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yml")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_durations() -> None:
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300 and parse_duration(2) == 2.0
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize("mutation", [
    ("  target: label", "  target: label\n  tagret: x"),   # unknown key
    ("    min: 0.7", "    min: high"),                      # wrong type
    ("  name: churn", "  name: [churn"),                    # bad YAML
])
def test_cli_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   mutation: tuple[str, str]) -> None:
    path = _write(tmp_path, GOOD.replace(*mutation))
    code = main(["validate", "--config", str(path), "--output", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"mlops-bot: error: {path}:")
    assert "Traceback" not in captured.err
    assert not (tmp_path / "out").exists()


def test_cli_missing_section_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "\n".join(GOOD.splitlines()[:6]) + "\n")
    assert main(["validate", "--config", str(path), "--output", str(tmp_path / "out")]) == 2
    assert "data: required key is missing" in capsys.readouterr().err


def _keys(model: type, prefix: str = "") -> list[str]:
    """Every key path of the schema (sub-sections and maps of sections recursed into)."""
    import typing

    from pydantic import BaseModel

    out = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        if field.exclude:
            continue
        out.append(prefix + name)
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        for arg in list(candidates):
            candidates.extend(typing.get_args(arg))
        for arg in candidates:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                out.extend(_keys(arg, prefix + name + "."))
    return out


def test_docs_document_every_key() -> None:
    from mlops_bot.config import MlopsConfig

    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    sections = {k.split(".")[0] for k in _keys(MlopsConfig)}
    assert all(f"`{s}`" in docs for s in sections)
    # every key appears in its section's table or YAML example; a new key must be documented
    missing = []
    for key in dict.fromkeys(_keys(MlopsConfig)):
        leaf = key.rsplit(".", 1)[-1]
        if not (f"`{leaf}`" in docs or f"{leaf}:" in docs or f".{leaf}`" in docs):
            missing.append(key)
    assert not missing, f"document these keys in docs/config.md: {missing}"
