"""The registry commands, `/promote` and `/rollback`: plan (journalled, so a resumed job acts on
the plan it made), check the stage's permission, move the stage tag through the registry (which
enforces the policy, gates included), signal a running rollout, and start the deploy workflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from mlops_bot.bot.commands import Command, CommandSyntaxError, next_stage, required_permission
from mlops_bot.bot.effects import Journal
from mlops_bot.bot.routing import DEPLOY_EVENT, CommentCommand, DeliveryContext, RepoSettings
from mlops_bot.deploy.control import Action as ControlAction
from mlops_bot.deploy.control import running_rollout
from mlops_bot.errors import RegistryError
from mlops_bot.forge.base import Forge
from mlops_bot.permissions import Permission, permission_at_least
from mlops_bot.registry.audit import RegistryEvent
from mlops_bot.registry.tags import Action

DeployControl = Callable[[Forge, str, ControlAction, str], None]
Dispatch = Callable[[str, dict[str, Any]], None]


class RegistryLike(Protocol):
    """What the bot uses of `mlops_bot.registry.registry.Registry`."""

    def show(self, name: str | None = None) -> dict[str, Any]: ...
    def latest_version(self, name: str) -> str | None: ...
    def show_versions(self, name: str) -> list[dict[str, Any]]: ...
    def stage_version(self, name: str, stage: str) -> str | None: ...
    def history(self, name: str | None = None) -> list[RegistryEvent]: ...
    def assign(self, name: str, stage: str, *, version: str | None = None, ref: str | None = None,
               actor: str | None = None, actor_permission: Permission | None = None,
               gates_passed: bool | None = None, trailers: dict[str, str] | None = None,
               push: bool = False, force: bool = False) -> RegistryEvent: ...


class Refused(Exception):
    """The commenter's permission is below what the command needs for this stage."""

    def __init__(self, need: Permission) -> None:
        self.need = need


def command_model(command: Command, settings: RepoSettings) -> str:
    model = command.args.get("model") or settings.model
    if not model:
        raise CommandSyntaxError("which model? Add `model=NAME` (no `.github/mlops.yml` names one).")
    return model


def check_stage(command: Command, stage: str, settings: RepoSettings, have: Permission) -> None:
    if stage not in settings.registry.stages:
        raise CommandSyntaxError(
            f"unknown stage `{stage}`; the stages are {', '.join(settings.registry.stages)}."
        )
    need = required_permission(command, settings.bot, settings.registry, stage)
    if not permission_at_least(have, need):
        raise Refused(need)


def promote(command: Command, request: CommentCommand, context: DeliveryContext, settings: RepoSettings,
            have: Permission, journal: Journal, dispatch: Dispatch, registry_for: Callable[[], RegistryLike],
            control_for: Callable[[], DeployControl]) -> str:
    forge = context.forge
    model = command_model(command, settings)
    registry = registry_for()
    environment = settings.rollout.environment

    def plan() -> list[str]:
        version = command.args.get("version") or default_version(model, request, forge, registry)
        shown = registry.show(model).get(model, {})
        holding = [stage for stage, held in (shown.get("stage") or {}).items() if held == version]
        stage = command.stage or next_stage(settings.registry.stages, holding)
        waiting = stage == settings.rollout.stage and stage in holding \
            and rollout_waiting(forge, environment, version)
        return [version, stage, "release-hold" if waiting else "assign"]

    # Journalled: a resumed job must act on the plan it made, not re-plan from the state its
    # own first attempt changed (the next stage would then be one further).
    version, stage, mode = journal("plan", plan)
    check_stage(command, stage, settings, have)
    if mode == "release-hold":
        control = control_for()
        journal("control", lambda: control(forge, environment, "promote", request.author))
        return (f"The rollout of `{model}` {version} in `{environment}` was waiting for a manual "
                "promote: it proceeds to the next step.")
    # The registry enforces the policy, gates included (Verdict trailer or the release's report.json).
    journal("assign", lambda: registry.assign(
        model, stage, version=version, actor=request.author, actor_permission=have,
        trailers={"Pull-Request": f"#{request.number}", "Requested-By": request.author}, push=True,
    ).tag, lambda: f"{model}#{stage}" if registry.stage_version(model, stage) == version else None)
    payload = {"model": model, "version": version, "stage": stage, "actor": request.author,
               "pull_request": request.number, "trigger": "promote"}
    dispatch(DEPLOY_EVENT, payload)
    return (f"Promoted `{model}` {version} to `{stage}` (tag pushed) and started the deploy workflow "
            f"(`repository_dispatch` `{DEPLOY_EVENT}`).")


def default_version(model: str, request: CommentCommand, forge: Forge, registry: RegistryLike) -> str:
    """On a PR: the version registered at its head commit, so `/promote` ships the model this PR
    validated and never another PR's newer one. Elsewhere: the latest registered version."""
    if not request.pull_request:
        latest = registry.latest_version(model)
        if latest is None:
            raise RegistryError(f"model {model} has no registered version yet")
        return latest
    head = forge.get_pull_request(request.number).head_sha
    version = version_at_commit(registry, model, head) if head else None
    if version is None:
        where = f"head commit `{head[:7]}`" if head else "head commit (unknown to the forge)"
        raise RegistryError(
            f"this pull request's {where} has no registered version of `{model}`. The PR "
            "validation registers it when its gates pass (push a commit or re-run it); or name one "
            "with `version=vX.Y.Z`."
        )
    return version


def rollback(command: Command, request: CommentCommand, context: DeliveryContext, settings: RepoSettings,
             have: Permission, journal: Journal, dispatch: Dispatch, registry_for: Callable[[], RegistryLike],
             control_for: Callable[[], DeployControl]) -> str:
    forge = context.forge
    model = command_model(command, settings)
    stage = command.stage or settings.rollout.stage
    check_stage(command, stage, settings, have)
    registry = registry_for()

    def plan() -> list[str]:
        current = registry.stage_version(model, stage)
        previous = previous_version(registry.history(model), model, stage, current)
        if current is None or previous is None:
            raise RegistryError(f"`{model}` has no earlier version in `{stage}` to roll back to")
        return [current, previous]

    current, previous = journal("plan", plan)
    control = control_for() if stage == settings.rollout.stage else None
    environment = settings.rollout.environment
    if control is not None:
        journal("control", lambda: control(forge, environment, "rollback", request.author))
    journal("assign", lambda: registry.assign(
        model, stage, version=previous, actor=request.author, actor_permission=have,
        trailers={"Pull-Request": f"#{request.number}", "Rollback-Of": current}, push=True, force=True,
    ).tag, lambda: f"{model}#{stage}" if registry.stage_version(model, stage) == previous else None)
    payload = {"model": model, "version": previous, "stage": stage, "actor": request.author,
               "pull_request": request.number, "trigger": "rollback"}
    dispatch(DEPLOY_EVENT, payload)
    return f"Rolled `{model}` in `{stage}` back from {current} to {previous}."


def version_at_commit(registry: RegistryLike, model: str, commit: str) -> str | None:
    """The highest active version of `model` whose register tag points at `commit` (a full sha).

    Compares shas as text: the commit itself need not be in the bot's checkout when unregistered."""
    try:
        rows = registry.show_versions(model)
    except RegistryError:  # the model has no tags at all
        return None
    for row in rows:  # semver order, highest first
        if row.get("commit_hexsha") == commit and row.get("registrations") and not row.get("discovered"):
            return str(row["version"])
    return None


def previous_version(history: list[RegistryEvent], model: str, stage: str, current: str | None
                      ) -> str | None:
    """The version assigned to `stage` before `current`, from the registry history (any order)."""
    assigned = sorted((event.created_at, str(event.version)) for event in history
                      if event.name == model and event.stage == stage and event.action == Action.ASSIGN)
    versions = [version for _, version in assigned]
    while versions and versions[-1] == current:
        versions.pop()
    return versions[-1] if versions else None


def rollout_waiting(forge: Forge, environment: str, version: str) -> bool:
    """Whether a rollout of this version is running in `environment` (a rollout holding at a
    manual step is `in_progress`): `deploy.control.running_rollout` decides what "running" is."""
    running = running_rollout(forge, environment)
    return running is not None and str(running[0].payload.get("version", "")) == version
