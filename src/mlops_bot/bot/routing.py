"""Which events matter to the bot and what they ask of it (pure: the payload and the repository's
settings in, a `Route` out), and the settings it reads from `.github/mlops.yml`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from mlops_bot.bot.commands import COMMANDS, Command, CommandSyntaxError
from mlops_bot.config import BotSection, RegistrySection, RolloutSection
from mlops_bot.forge.base import Forge
from mlops_bot.report.escape import quote

HANDLED_EVENTS = frozenset({"issue_comment", "pull_request", "push"})
PR_ACTIONS = frozenset({"opened", "synchronize", "reopened"})

# repository_dispatch event types the bot sends; the workflow templates listen for these.
VALIDATE_EVENT = "mlops-validate"
DEPLOY_EVENT = "mlops-deploy"
RETRAIN_EVENT = "mlops-retrain"
DRIFT_EVENT = "mlops-drift"


# ------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ModelSettings:
    """One model's sections the bot acts on."""

    name: str
    registry: RegistrySection
    rollout: RolloutSection


@dataclass(frozen=True)
class RepoSettings:
    """The parts of a repository's `.github/mlops.yml` the bot acts on (defaults when absent).
    With several models, `registry`/`rollout`/`model` are those of the first until a command
    picks one (`for_command`)."""

    bot: BotSection = field(default_factory=BotSection)
    registry: RegistrySection = field(default_factory=RegistrySection)
    rollout: RolloutSection = field(default_factory=RolloutSection)
    model: str | None = None
    models: tuple[ModelSettings, ...] = ()

    def for_command(self, command: Command) -> RepoSettings:
        """The settings of the model a command names (`model=`). Several models and no `model=`, or
        a name the config does not declare: CommandSyntaxError listing the names. `/abort
        environment=ENV` needs no model. One model (or none): unchanged, as before."""
        spec = COMMANDS[command.name]
        if len(self.models) < 2 or "model" not in spec.keys:
            return self
        name = command.args.get("model")
        listed = ", ".join(f"`{m.name}`" for m in self.models)
        if name is None:
            if command.name == "abort" and "environment" in command.args:
                return self
            raise CommandSyntaxError(f"this repository has {len(self.models)} models ({listed}): say which "
                                     f"with `model=NAME`. Usage: `{spec.usage}`", command.name)
        chosen = next((m for m in self.models if m.name == name), None)
        if chosen is None:
            raise CommandSyntaxError(f"no model {quote(name)} in `.github/mlops.yml`; the models are "
                                     f"{listed}.", command.name)
        return replace(self, registry=chosen.registry, rollout=chosen.rollout, model=chosen.name)


# -------------------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class CommentCommand:
    repo: str
    number: int
    comment_id: int
    author: str
    body: str
    # A comment on a pull request (the only kind `route` passes on today): `/promote` without
    # `version=` then means the version registered at the PR's head commit, not the latest one.
    pull_request: bool = True


@dataclass(frozen=True)
class DispatchRequest:
    repo: str
    event_type: str
    client_payload: dict[str, Any]


Route = Ignore | CommentCommand | DispatchRequest


def _is_bot(user: dict[str, Any]) -> bool:
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def route(event: str, payload: dict[str, Any], bot: BotSection) -> Route:
    """Decide what an event asks of the bot. Pure: looks only at the payload and the bot config."""
    repo = str((payload.get("repository") or {}).get("full_name") or "")
    if event not in HANDLED_EVENTS:
        return Ignore(f"event {event!r} is not handled")
    if not repo:
        return Ignore("payload has no repository.full_name")
    if event == "issue_comment":
        action = payload.get("action")
        issue = payload.get("issue") or {}
        comment = payload.get("comment") or {}
        user = comment.get("user") or {}
        if action != "created" and not (action == "edited" and bot.handle_edits):
            return Ignore(f"comment {action}")
        if "pull_request" not in issue:
            return Ignore("comment on an issue, not a pull request")
        if bot.ignore_bots and _is_bot(user):
            return Ignore(f"comment by bot {user.get('login')}")
        body = str(comment.get("body") or "")
        if not body.lstrip().startswith("/"):
            return Ignore("not a command")
        author = str(user.get("login", ""))
        return CommentCommand(repo, int(issue["number"]), int(comment["id"]), author, body,
                              pull_request="pull_request" in issue)
    if event in ("pull_request", "push") and event not in bot.dispatch_on:
        return Ignore(f"{event} dispatch is off (bot.dispatch_on)")
    if event == "pull_request":
        action = payload.get("action")
        if action not in PR_ACTIONS:
            return Ignore(f"pull_request {action}")
        pr = payload.get("pull_request") or {}
        head, base = pr.get("head") or {}, pr.get("base") or {}
        return DispatchRequest(repo, VALIDATE_EVENT, {
            "pull_request": int(payload.get("number") or pr.get("number") or 0),
            "head_sha": head.get("sha", ""), "head_ref": head.get("ref", ""), "base_ref": base.get("ref", ""),
            "action": action,
        })
    # push
    ref = str(payload.get("ref") or "")
    default = (payload.get("repository") or {}).get("default_branch") or "main"
    if ref != f"refs/heads/{default}":
        return Ignore(f"push to {ref or 'unknown ref'}, not the default branch")
    if payload.get("deleted"):
        return Ignore("branch deleted")
    return DispatchRequest(repo, DEPLOY_EVENT, {
        "trigger": "push", "ref": ref, "sha": payload.get("after", ""),
    })


@dataclass(frozen=True)
class DeliveryContext:
    """Who a delivery is for: the repository, the App installation of the payload and the forge
    acting for that installation. Passed to the settings and registry loaders, so a clone or a tag
    push authenticates as the installation that sent the event."""

    repo: str
    installation: int | None
    forge: Forge
    delivery: str | None = None
