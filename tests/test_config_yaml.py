"""A config file cannot bomb us: billion laughs, non-UTF-8 bytes, 3,000 levels of nesting, duplicate
keys, recursive aliases and huge files each end in ONE ConfigError line with file:line (the CLI: exit
2, no traceback), while ordinary configs with an alias or two load and keep their error positions."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_bot import config_yaml
from mlops_bot.bot.checkout import settings_from_text
from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.errors import ConfigError
from mlops_bot.registry.views import configured_stages

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

# The classic: 9 levels of 9 aliases each = 9**9 (387 million) strings once expanded.
LAUGHS = "lol0: &a0 lol\n" + "".join(
    f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10)
)


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / ".github" / "mlops.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _refused(tmp_path: Path, text: str | bytes) -> ConfigError:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "\n" not in message
    return info.value


def test_billion_laughs_is_refused_at_the_first_alias_past_the_budget(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        error = _refused(tmp_path, GOOD + LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "aliases expand the document past 10,000 nodes" in str(error)
    # Aliases up to lol4 add 8,298 nodes; lol5's first alias (lol4: 7,381 nodes) passes 10,000.
    assert error.line == GOOD.count("\n") + 6 and error.key == "lol5.0"
    assert peak < 20 * 1024 * 1024  # the graph is never expanded (the expansion would be gigabytes)


def test_the_bot_refuses_a_bombed_repository_config() -> None:
    with pytest.raises(ConfigError, match="aliases expand"):
        settings_from_text(GOOD + LAUGHS)
    with pytest.raises(ConfigError, match="not UTF-8"):
        settings_from_text(b"bot:\n  permission: \xff\n")


def test_registry_reads_a_gto_file_with_the_same_bounds(tmp_path: Path) -> None:
    (tmp_path / ".gto").write_text("stages: [dev, prod]\n")
    assert configured_stages(tmp_path) == ["dev", "prod"]
    (tmp_path / ".gto").write_text("stages: [dev]\n" + LAUGHS)
    with pytest.raises(ConfigError, match="aliases expand"):
        configured_stages(tmp_path)


def test_non_utf8_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    error = _refused(tmp_path, GOOD.encode().replace(b"name: churn", b"name: caf\xe9"))
    assert error.line == 2 and "not UTF-8 text (byte 0xe9)" in str(error)


@pytest.mark.parametrize("nested", [
    "deep: " + "[" * 3000 + "]" * 3000 + "\n",          # flow sequences
    "deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",  # flow mappings
    "deep:\n  " + "- " * 3000 + "x\n",                   # block sequences on one line
])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path: Path, nested: str) -> None:
    error = _refused(tmp_path, GOOD + nested)
    assert f"nested deeper than {config_yaml.MAX_DEPTH} levels" in str(error)
    assert error.line is not None and error.line >= GOOD.count("\n") + 1
    assert error.key.startswith("deep")


def test_a_key_given_twice_is_an_error_not_the_last_one_wins(tmp_path: Path) -> None:
    error = _refused(tmp_path, GOOD + "seed: 1\nbootstrap:\n  samples: 100\nseed: 2\n")
    assert error.key == "seed" and error.line == GOOD.count("\n") + 4
    assert "key 'seed' is given twice (first at line 14)" in str(error)
    nested = _refused(tmp_path, GOOD.replace("    min: 0.7", "    min: 0.7\n    min: 0.8"))
    assert nested.key == "gates.accuracy.min" and nested.line == 14


def test_recursive_alias_and_huge_file(tmp_path: Path) -> None:
    assert "refers to a node that contains it" in str(_refused(tmp_path, GOOD + "loop: &l [*l]\n"))
    huge = _refused(tmp_path, GOOD + "# " + "x" * config_yaml.MAX_BYTES + "\n")
    assert "at most" in str(huge) or "larger than" in str(huge)


def test_cli_exits_2_with_one_line_for_a_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD + LAUGHS)
    code = main(["validate", "--config", str(path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "aliases expand" in err


# ------------------------------------------------------------------- ordinary configs with aliases
ALIASED = """\
model:
  name: churn
  task: classification
  owners: &people
    - alice
    - bob
train:
  builtin:
    estimator: logistic_regression
    params: &params
      C: 0.5
      max_iter: 200
data:
  train: train.csv
  holdout: holdout.csv
  target: label
  sensitive: [sex]
gates:
  accuracy: &floor
    min: 0.7
  roc_auc: *floor
registry:
  stages: [staging, production]
"""


def _old_line_index(text: str) -> dict[tuple[str, ...], int]:
    """The index config.py used before (walks the expanded tree): the oracle for line positions."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                path = (*prefix, str(key.value))
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                path = (*prefix, str(i))
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return lines


def test_ordinary_aliases_load_and_keep_their_error_positions(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, ALIASED))
    assert config.gates["roc_auc"].min == 0.7 and config.model.owners == ["alice", "bob"]
    oracle = _old_line_index(ALIASED)
    assert ("gates", "roc_auc", "min") in oracle  # reached only through the alias
    for path, line in oracle.items():
        assert config_yaml.line_of(ALIASED, path) == line, path
        # a missing key under an existing one: the old lookup fell back to the deepest known prefix
        assert config_yaml.line_of(ALIASED, (*path, "nope")) == line
    broken = ALIASED.replace("    min: 0.7", "    min: high")
    error = _refused(tmp_path, broken)
    assert error.key == "gates.accuracy.min" and error.line == 20
