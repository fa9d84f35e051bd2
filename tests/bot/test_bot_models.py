"""A repository with several models: `/promote`, `/rollback` and `/abort` take `model=NAME`, act
on that model's registry policy and rollout environment, and without it (or with a name the config
does not declare) reply with the names. Real registry (tags pushed to a bare origin), the bot's own
checkout reading the default branch, local forge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bot_testkit import REPO, World, git, make_world

from mlops_bot.bot.checkout import RepoCheckouts, settings_from_text
from mlops_bot.bot.handlers import EventHandler
from mlops_bot.bot.registry_commands import RegistryLike
from mlops_bot.bot.routing import DeliveryContext, RepoSettings
from mlops_bot.forge.base import Forge
from mlops_bot.registry.registry import Registry

MODELS = """\
version: 1
train: {builtin: {estimator: logistic_regression}}
registry:
  stages: [staging, production]
rollout: {stage: production}
models:
  - model: {name: churn, task: classification}
    data: {train: data/train.csv, holdout: data/holdout.csv, target: y}
  - model: {name: "vision:digits", task: classification}
    data: {train: vision/train.csv, holdout: vision/holdout.csv, target: digit}
    registry:
      stages: [staging, production]
      policy:
        production: {permission: admin}
    rollout: {environment: digits, stage: production}
"""


def _world(tmp: Path, config: str = MODELS, files: dict[str, str] | None = None) -> World:
    world = make_world(tmp, config)  # registers churn v1.0.0, v1.1.0, v1.2.0
    for name, text in (files or {}).items():
        path = world.work / ".github" / "mlops" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for version in ("v0.1.0", "v0.2.0"):
        git(world.work, "add", "-A")
        git(world.work, "commit", "--quiet", "--allow-empty", "-m", f"vision:digits {version}")
        Registry(world.work, remote="origin").register("vision:digits", version=version,
                                                       trailers={"Verdict": "pass"}, push=True)
    git(world.work, "push", "--quiet", "origin", "main")
    return world


def _handler(world: World) -> EventHandler:
    """The production wiring of the settings: `.github/mlops.yml` and `.github/mlops/*.yml` of the
    default branch, read from the bot's checkout."""
    checkouts = RepoCheckouts(world.tmp / "state" / "repos", str(world.tmp / "remotes") + "/{repo}.git")

    def settings_for(context: DeliveryContext) -> RepoSettings:
        checkouts.sync(context.repo)
        folder = checkouts.read_default_branch_folder(context.repo, ".github/mlops")
        return settings_from_text(checkouts.read_default_branch_file(context.repo, ".github/mlops.yml"),
                                  model_files=folder)

    def registry_for(context: DeliveryContext, settings: RepoSettings) -> RegistryLike:
        return Registry(checkouts.sync(context.repo), forge=context.forge, remote="origin",
                        policy=settings.registry)

    def control(_forge: Forge, environment: str, action: str, actor: str) -> None:
        world.controls.append((environment, action, actor))

    return EventHandler(lambda repo, _inst: world.forge, settings_for, registry_for, control)


def run(world: World, body: str, login: str = "alice") -> tuple[str, list[str], str]:
    payload: dict[str, Any] = world.comment(body, login=login)
    outcome = _handler(world).handle("issue_comment", payload)
    return outcome.status, world.forge.reactions(payload["comment"]["id"]), outcome.reply or ""


def _stage(world: World, model: str, stage: str) -> str | None:
    return world.registry().stage_version(model, stage)


def test_commands_pick_a_model_by_name(tmp_path: Path) -> None:
    world = _world(tmp_path)
    status, reactions, reply = run(world, "/promote staging version=v0.1.0")
    assert (status, reactions) == ("refused", ["eyes", "confused"])
    assert "this repository has 2 models (`churn`, `vision:digits`): say which with `model=NAME`" in reply
    status, _, reply = run(world, "/promote staging version=v0.1.0 model=fraud")
    assert status == "refused" and "no model `fraud` in `.github/mlops.yml`; the models are" in reply
    assert _stage(world, "vision:digits", "staging") is None

    status, _, reply = run(world, "/promote staging version=v0.1.0 model=vision:digits")
    assert status == "done", reply
    assert "Promoted `vision:digits` v0.1.0 to `staging`" in reply
    assert _stage(world, "vision:digits", "staging") == "v0.1.0" and _stage(world, "churn", "staging") is None
    assert "vision=digits#staging#1" in git(world.origin, "tag", "--list").split()  # GTO's monorepo tag
    assert world.forge.dispatches()[-1]["client_payload"]["model"] == "vision:digits"

    # each model's own registry policy: production of vision:digits needs admin, churn's write
    assert run(world, "/promote staging version=v1.0.0 model=churn", login="bob")[0] == "done"
    assert run(world, "/promote production version=v1.0.0 model=churn", login="bob")[0] == "done"
    status, _, reply = run(world, "/promote production version=v0.1.0 model=vision:digits", login="bob")
    assert status == "refused" and "needs `admin` permission" in reply

    # /abort and /rollback reach the model's own rollout environment
    assert run(world, "/abort model=vision:digits", login="bob")[0] == "done"
    assert run(world, "/abort model=churn", login="bob")[0] == "done"
    assert run(world, "/abort environment=staging-eu", login="bob")[0] == "done"  # no model needed
    status, _, reply = run(world, "/abort", login="bob")
    assert status == "refused" and "say which with `model=NAME`" in reply
    assert [env for env, _, _ in world.controls] == ["digits", "production-churn", "staging-eu"]
    assert run(world, "/promote staging version=v1.1.0 model=churn")[0] == "done"
    assert run(world, "/promote production version=v1.1.0 model=churn")[0] == "done"
    status, _, reply = run(world, "/rollback model=churn")
    assert status == "done" and "Rolled `churn` in `production` back from v1.1.0 to v1.0.0" in reply
    assert world.controls[-1][:2] == ("production-churn", "rollback")
    assert _stage(world, "churn", "production") == "v1.0.0"


def test_one_file_per_model_on_the_default_branch(tmp_path: Path) -> None:
    shared = "version: 1\nregistry: {stages: [staging, production]}\nbot: {permission: write}\n"
    churn = ("model: {name: churn, task: classification}\ntrain: {builtin: {estimator: ridge}}\n"
             "data: {train: a.csv, holdout: b.csv, target: y}\n")
    world = _world(tmp_path, shared, {"churn.yml": churn,
                                      "digits.yaml": churn.replace("name: churn", "name: vision:digits")})
    status, _, reply = run(world, "/rollback")
    assert status == "refused" and "2 models (`churn`, `vision:digits`)" in reply
    status, _, reply = run(world, "/promote staging version=v0.2.0 model=vision:digits")
    assert status == "done", reply
    assert _stage(world, "vision:digits", "staging") == "v0.2.0"
    assert world.forge.dispatches()[-1]["client_payload"]["model"] == "vision:digits"


def test_a_single_model_repository_is_unchanged(tmp_path: Path) -> None:
    settings = settings_from_text(MODELS.split("models:")[0] + "model: {name: churn, task: regression}\n"
                                  "data: {train: a, holdout: b, target: y}\n")
    assert settings.model == "churn" and len(settings.models) == 1
    from mlops_bot.bot.commands import parse_command

    command = parse_command("/promote staging model=anything")
    assert command is not None and settings.for_command(command) is settings


def test_an_oversized_config_is_read_bounded_and_refused_by_name(tmp_path: Path) -> None:
    """The default branch's config is the repository's to write: the bot reads at most one byte
    more than a config may have (never the whole blob into memory) and refuses it with the
    loader's size error naming the file."""
    from mlops_bot import config_yaml
    from mlops_bot.errors import ConfigError

    padding = "# " + "x" * 78 + "\n"
    huge = MODELS + padding * (3 * config_yaml.MAX_BYTES // len(padding))
    world = _world(tmp_path, huge)
    checkouts = RepoCheckouts(world.tmp / "state" / "repos", str(world.tmp / "remotes") + "/{repo}.git")
    checkouts.sync(REPO)
    text = checkouts.read_default_branch_file(REPO, ".github/mlops.yml")
    assert text is not None and len(text.encode("utf-8", "surrogateescape")) == config_yaml.MAX_BYTES + 1
    with pytest.raises(ConfigError, match=r"\.github/mlops\.yml.*larger than 1,048,576 bytes"):
        settings_from_text(text)
    small = checkouts.read_default_branch_file(REPO, "model.txt")
    assert small == "v1.2.0"  # an ordinary file reads whole

