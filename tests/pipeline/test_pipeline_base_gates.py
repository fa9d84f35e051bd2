"""Gates from the base branch: a PR that lowers its own gates is judged by the base branch's, the
report says so, and a maintainer's acceptance makes the PR's own gates apply (said so too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_bot.cli import main
from mlops_bot.config import load_config
from mlops_bot.pipeline.base_gates import ACCEPT_COMMAND, changed_sections, judge_by_base
from validate_project import credit_project


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the base branch's config, the PR's config): the PR swaps the model for a constant predictor
    and lowers its gate to match."""
    root = tmp_path_factory.mktemp("project")
    base = credit_project(root)
    data = yaml.safe_load(base.read_text())
    data["train"] = {"builtin": {"estimator": "dummy"}}
    data["gates"]["roc_auc"] = {"min": 0}
    pr = base.with_name("pr-mlops.yml")
    pr.write_text(yaml.safe_dump(data, sort_keys=False))
    return base, pr


def test_only_the_deciding_sections_count(project: tuple[Path, Path]) -> None:
    base_path, pr_path = project
    base, pr = load_config(base_path), load_config(pr_path)
    assert changed_sections(pr, base) == ("gates",)
    assert changed_sections(base, base) == ()
    judged = judge_by_base(pr, base, "main")
    assert judged.config.gates == base.gates
    assert judged.config.train == pr.train  # how the model is trained is the PR's to change
    assert judged.notice is not None
    assert "judged by main's" in judged.notice and ACCEPT_COMMAND in judged.notice
    assert judge_by_base(base, base, "main").notice is None
    accepted = judge_by_base(pr, base, "main", accepted=True)
    assert accepted.config.gates == pr.gates and "accepted by a maintainer" in str(accepted.notice)
    adopting = judge_by_base(pr, None, "main")
    assert adopting.config is pr and "main has no mlops-bot config yet" in str(adopting.notice)


def test_every_deciding_section_is_guarded(project: tuple[Path, Path]) -> None:
    base = load_config(project[0])
    for update in ({"bootstrap": base.bootstrap.model_copy(update={"samples": 100})},
                   {"baseline": base.baseline.model_copy(update={"stage": "staging"})},
                   {"registry": base.registry.model_copy(update={"stages": ["production"]})}):
        pr = base.model_copy(update=update)
        assert changed_sections(pr, base) == tuple(update)
        assert getattr(judge_by_base(pr, base, "main").config, next(iter(update))) == \
            getattr(base, next(iter(update)))


def _cli(pr: Path, out: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["validate", "--config", str(pr), "--output", str(out), "--quiet", *extra])
    return code, json.loads((out / "report.json").read_text())


def test_a_pr_lowering_its_own_gate_fails_by_the_base_gates(project: tuple[Path, Path], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    base, pr = project
    code, report = _cli(pr, tmp_path / "own")
    assert code == 0 and report["verdict"] == "pass"  # what the PR would get judging itself

    code, report = _cli(pr, tmp_path / "judged", "--base-config", str(base), "--base-name", "main")
    assert code == 1 and report["verdict"] == "fail"
    assert next(g["rule"] for g in report["gates"] if g["metric"] == "roc_auc") == ">= 0.6"
    assert "judged by main's" in report["gates_notice"]
    markdown = (tmp_path / "judged" / "report.md").read_text()
    assert "**Gates:** this PR changes its own gates (gates): judged by main's" in markdown
    assert "judged by main's" in capsys.readouterr().out

    code, report = _cli(pr, tmp_path / "accepted", "--base-config", str(base), "--accept-pr-gates")
    assert code == 0 and "accepted by a maintainer" in report["gates_notice"]

    code, report = _cli(pr, tmp_path / "adopting", "--base-config", str(tmp_path / "absent.yml"))
    assert code == 0 and "has no mlops-bot config yet" in report["gates_notice"]
