"""From a webhook event to actions: reactions, replies, registry changes, rollout control and
workflow dispatches.

`route` is the pure decision (which events matter, who is ignored); `EventHandler` carries it out
through the Forge, the Registry and deploy control, each passed in so the same code runs in the
webhook server, in `mlops-bot bot handle-event` inside GitHub Actions, in the demo and in tests.
Every side effect goes through `journal(step, action)` so a job resumed after a crash skips what it
already did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from mlops_bot import redaction
from mlops_bot.bot.commands import (
    COMMANDS,
    Command,
    CommandSyntaxError,
    help_text,
    next_stage,
    parse_command,
    required_permission,
)
from mlops_bot.config import BotSection, RegistrySection, RolloutSection
from mlops_bot.deploy.control import Action as ControlAction
from mlops_bot.deploy.control import running_rollout
from mlops_bot.errors import MlopsError, RateLimited, RegistryError
from mlops_bot.forge.base import Forge, Reaction
from mlops_bot.permissions import REPOSITORY_FLOOR, Permission, permission_at_least
from mlops_bot.registry.registry import RegistryEvent
from mlops_bot.registry.tags import Action
from mlops_bot.report import escape
from mlops_bot.report.escape import quote

log = logging.getLogger("mlops_bot.bot")

T = TypeVar("T")
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


# --------------------------------------------------------------------------------- collaborators
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


@dataclass(frozen=True)
class DeliveryContext:
    """Who a delivery is for: the repository, the App installation of the payload and the forge
    acting for that installation. Passed to the settings and registry loaders, so a clone or a tag
    push authenticates as the installation that sent the event."""

    repo: str
    installation: int | None
    forge: Forge
    delivery: str | None = None


class Cooldowns(Protocol):
    """A shared clock of cool-downs (the queue's database): `take(key, now, seconds)` returns 0.0
    and starts the cool-down when it is over, else the seconds left."""

    def take(self, key: str, now: float, seconds: float) -> float: ...


ForgeFactory = Callable[[str, int | None], Forge]
SettingsLoader = Callable[[DeliveryContext], RepoSettings]
RegistryFactory = Callable[[DeliveryContext, RepoSettings], RegistryLike]
DeployControl = Callable[[Forge, str, ControlAction, str], None]
class Journal(Protocol):
    """Runs a named side effect at most once per job; `verify` (when given) tells, after a crash
    between doing an effect and recording it, whether it happened (returning its result) or not."""

    def __call__(self, step: str, action: Callable[[], T], verify: Callable[[], T | None] | None = None
                 ) -> T: ...


def run_now(step: str, action: Callable[[], T], verify: Callable[[], T | None] | None = None) -> T:
    """A journal that just runs the action (no crash recovery): for one-shot runs."""
    del step, verify
    return action()


def reply_marker(delivery: str) -> str:
    """Hidden marker in a reply, so a resumed job can tell whether its reply was already posted."""
    return f"<!-- mlops-bot:reply delivery={delivery} -->"


def default_deploy_control() -> DeployControl | None:
    try:
        from mlops_bot.deploy.control import request_action
    except ImportError:  # an installation without the deploy package
        return None
    return request_action


@dataclass
class Outcome:
    """What a job did, for logs, metrics and tests."""

    status: str  # ignored | done | refused | failed | dispatched
    detail: str = ""
    reply: str | None = None


_PERMISSIVE = BotSection(ignore_bots=False, handle_edits=True, dispatch_on=["pull_request", "push"])


class EventHandler:
    """Carries out routed events. Collaborators are injected; see the module docstring."""

    def __init__(
        self,
        forge_for: ForgeFactory,
        settings_for: SettingsLoader | None = None,
        registry_for: RegistryFactory | None = None,
        deploy_control: DeployControl | None = None,
        cooldowns: Cooldowns | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.forge_for = forge_for
        self.settings_for = settings_for or (lambda _context: RepoSettings())
        self.registry_for = registry_for
        self.deploy_control = deploy_control
        self.cooldowns = cooldowns
        self.clock = clock

    # ---------------------------------------------------------------------------- entry point
    def handle(self, event: str, payload: dict[str, Any], journal: Journal = run_now,
               delivery: str | None = None) -> Outcome:
        """`delivery` (X-GitHub-Delivery) makes effects recognisable after a crash: it marks the
        reply and is the idempotency key (`delivery`) in every dispatch's client payload."""
        # First a permissive pass that needs no repository settings, so the common case (not a
        # command, an unhandled action) costs no forge or git call.
        quick = route(event, payload, _PERMISSIVE)
        if isinstance(quick, Ignore):
            return Outcome("ignored", quick.reason)
        installation = (payload.get("installation") or {}).get("id")
        number = int(installation) if isinstance(installation, int) else None
        forge = self.forge_for(quick.repo, number)
        context = DeliveryContext(quick.repo, number, forge, delivery)
        if isinstance(quick, CommentCommand):
            return self._comment(event, payload, quick, context, journal)
        settings = self.settings_for(context)
        decision = route(event, payload, settings.bot)
        if isinstance(decision, Ignore):
            return Outcome("ignored", decision.reason)
        assert isinstance(decision, DispatchRequest)
        client_payload = _keyed(decision.client_payload, delivery)
        journal("dispatch", lambda: forge.repository_dispatch(decision.event_type, client_payload),
                _dispatch_probe(forge, delivery))
        return Outcome("dispatched", decision.event_type)

    # ------------------------------------------------------------------------------- commands
    def _comment(self, event: str, payload: dict[str, Any], quick: CommentCommand, context: DeliveryContext,
                 journal: Journal) -> Outcome:
        """A comment starting with `/`. Order matters: parse (pure), then the commenter's
        permission (one API call), and only for a commenter who may run some command here the
        repository's settings (a clone or fetch): an account with `read` (anyone, on a public
        repository) never makes the bot clone."""
        forge, delivery = context.forge, context.delivery
        syntax: CommandSyntaxError | None = None
        try:
            command = parse_command(quick.body)
        except CommandSyntaxError as error:
            command, syntax = None, error
        else:
            if command is None:  # "/" followed by something that does not look like a command
                return Outcome("ignored", "not a command")
        have: Permission = journal("permission", lambda: forge.get_permission(quick.author))
        if not permission_at_least(have, REPOSITORY_FLOOR):
            # Settings may only restrict what the defaults allow below the floor: decide without them.
            defaults = RepoSettings()
            if isinstance(route(event, payload, defaults.bot), Ignore):
                return Outcome("ignored", "below the repository floor and ignored by default settings")
            if command is None or command.name == "help":
                return self._command(quick, command, syntax, defaults, have, journal, context)
            need = required_permission(command, defaults.bot)
            if not permission_at_least(need, REPOSITORY_FLOOR):
                need = REPOSITORY_FLOOR
            return self._refuse(quick, command, have, need, *self._feedback(quick, forge, journal, delivery))
        try:
            settings = self.settings_for(context)
        except RateLimited:
            raise  # the job waits for the limit; nothing to tell the commenter
        except MlopsError as error:
            if not isinstance(quick, CommentCommand):
                raise
            # A broken config must be visible where the command was typed, not only in our log.
            text = f"@{quick.author} cannot run commands: {_said(error)}"
            journal("react-confused", lambda: forge.add_reaction(quick.comment_id, "confused"))
            _post_reply(forge, journal, quick.number, text, delivery)
            return Outcome("failed", str(error), text)
        decision = route(event, payload, settings.bot)
        if isinstance(decision, Ignore):
            return Outcome("ignored", decision.reason)
        assert isinstance(decision, CommentCommand)
        return self._command(decision, command, syntax, settings, have, journal, context)

    def _feedback(self, request: CommentCommand, forge: Forge, journal: Journal, delivery: str | None
                  ) -> tuple[Callable[[Reaction], None], Callable[[str], None]]:
        def react(content: Reaction) -> None:
            journal(f"react-{content}", lambda: forge.add_reaction(request.comment_id, content),
                    _reaction_probe(forge, request.comment_id, content))

        def reply(text: str) -> None:
            _post_reply(forge, journal, request.number, text, delivery)

        react("eyes")
        return react, reply

    def _command(self, request: CommentCommand, command: Command | None, syntax: CommandSyntaxError | None,
                 settings: RepoSettings, have: Permission, journal: Journal, context: DeliveryContext
                 ) -> Outcome:
        forge, delivery = context.forge, context.delivery

        def dispatch(event_type: str, payload: dict[str, Any]) -> None:
            keyed = _keyed(payload, delivery)
            journal("dispatch", lambda: forge.repository_dispatch(event_type, keyed),
                    _dispatch_probe(forge, delivery))

        react, reply = self._feedback(request, forge, journal, delivery)
        if command is None:
            assert syntax is not None
            text = f"@{request.author} {syntax}"
            if syntax.command is None:
                text += "\n\n" + help_text(settings.bot)
            react("confused")
            reply(text)
            return Outcome("refused", str(syntax), text)

        try:
            settings = settings.for_command(command)
        except CommandSyntaxError as which:
            text = f"@{request.author} {which}"
            react("confused")
            reply(text)
            return Outcome("refused", str(which), text)
        need = required_permission(command, settings.bot, settings.registry)
        if not permission_at_least(have, need):
            return self._refuse(request, command, have, need, react, reply)
        try:
            text = self._run(command, request, context, settings, have, journal, dispatch)
        except _Refused as refused:
            return self._refuse(request, command, have, refused.need, react, reply)
        except RateLimited:
            raise  # the worker defers the job; the journal resumes it where it stopped
        except CoolingDown as cooling:
            text = f"@{request.author} {cooling}"
            react("confused")
            reply(text)
            return Outcome("refused", str(cooling), text)
        except MlopsError as error:
            text = f"@{request.author} `/{command.name}` failed: {_said(error)}"
            react("confused")
            reply(text)
            return Outcome("failed", str(error), text)
        except Exception as error:  # a bug: retrying the job would not help, so report and stop
            log.exception("command /%s on %s#%s crashed", command.name, request.repo, request.number)
            text = (f"@{request.author} `/{command.name}` failed with an internal error; "
                    "the bot's log has the details.")
            react("confused")
            reply(text)
            return Outcome("failed", f"internal error: {type(error).__name__}", text)
        text = f"@{request.author} {text}"
        react("rocket")
        reply(text)
        return Outcome("done", command.name, text)

    @staticmethod
    def _refuse(request: CommentCommand, command: Command, have: Permission, need: Permission,
                react: Callable[[Reaction], None], reply: Callable[[str], None]) -> Outcome:
        text = (f"@{request.author} `/{command.name}` needs `{need}` permission on this repository; "
                f"you have `{have}`. Ask a maintainer to run it.")
        react("confused")
        reply(text)
        return Outcome("refused", f"permission {have} < {need}", text)

    def _run(self, command: Command, request: CommentCommand, context: DeliveryContext,
             settings: RepoSettings, have: Permission, journal: Journal,
             dispatch: Callable[[str, dict[str, Any]], None]) -> str:
        forge = context.forge
        if command.name == "help":
            return help_text(settings.bot)
        if command.name in ("retrain", "drift"):
            event_type = RETRAIN_EVENT if command.name == "retrain" else DRIFT_EVENT
            model = command.args.get("model") or settings.model or ""
            if command.name == "retrain":
                self._cool_down(context.repo, model, settings.bot.retrain_cooldown, journal)
            payload = {"model": model, "actor": request.author,
                       "pull_request": request.number, "reason": f"/{command.name} comment"}
            dispatch(event_type, payload)
            return f"Started the {command.name} workflow (`repository_dispatch` `{event_type}`)."
        if command.name == "accept-gates":
            from mlops_bot.pipeline.base_gates import acceptance_record

            if not request.pull_request:
                raise CommandSyntaxError("`/accept-gates` works on pull requests only.", command.name)
            head = journal("head", lambda: forge.get_pull_request(request.number).head_sha)
            if not head:
                raise MlopsError(f"pull request #{request.number} has no head commit yet")
            # The record is this reply itself (only the bot's own comments count), bound to the head.
            return (f"Accepted this PR's own gates at `{head[:12]}`: the comment job judges it by them from "
                    "the next validation run of this commit on (re-run the PR validation workflow to apply "
                    "it now); a new push needs a new `/accept-gates`.\n\n"
                    + acceptance_record(head, request.author))
        if command.name == "abort":
            environment = command.args.get("environment") or settings.rollout.environment
            control = self._control()
            journal("control", lambda: control(forge, environment, "abort", request.author))
            return (f"Asked the rollout in `{environment}` to abort: "
                    "all traffic goes back to the stable version.")
        if command.name == "promote":
            return self._promote(command, request, context, settings, have, journal, dispatch)
        return self._rollback(command, request, context, settings, have, journal, dispatch)

    def _cool_down(self, repo: str, model: str, seconds: float, journal: Journal) -> None:
        """One `/retrain` per model per `bot.retrain_cooldown`. Journalled, so a resumed job does
        not find its own cool-down."""
        if self.cooldowns is None or seconds <= 0:
            return
        cooldowns = self.cooldowns
        left = journal("cooldown", lambda: cooldowns.take(f"retrain:{repo}:{model}", self.clock(), seconds))
        if left > 0:
            raise CoolingDown(
                f"`/retrain` of `{model or 'the model'}` ran less than {_minutes(seconds)} ago "
                f"(`bot.retrain_cooldown`); try again in {_minutes(left)}."
            )

    def _control(self) -> DeployControl:
        control = self.deploy_control or default_deploy_control()
        if control is None:
            raise MlopsError("rollout control is not available here (no mlops_bot.deploy.control)")
        return control

    def _registry(self, context: DeliveryContext, settings: RepoSettings) -> RegistryLike:
        if self.registry_for is None:
            raise MlopsError("the model registry is not configured for the bot")
        return self.registry_for(context, settings)

    @staticmethod
    def _model(command: Command, settings: RepoSettings) -> str:
        model = command.args.get("model") or settings.model
        if not model:
            raise CommandSyntaxError("which model? Add `model=NAME` (no `.github/mlops.yml` names one).")
        return model

    def _check_stage(self, command: Command, stage: str, settings: RepoSettings, have: Permission) -> None:
        if stage not in settings.registry.stages:
            raise CommandSyntaxError(
                f"unknown stage `{stage}`; the stages are {', '.join(settings.registry.stages)}."
            )
        need = required_permission(command, settings.bot, settings.registry, stage)
        if not permission_at_least(have, need):
            raise _Refused(need)

    def _promote(self, command: Command, request: CommentCommand, context: DeliveryContext,
                 settings: RepoSettings, have: Permission, journal: Journal,
                 dispatch: Callable[[str, dict[str, Any]], None]) -> str:
        forge = context.forge
        model = self._model(command, settings)
        registry = self._registry(context, settings)
        environment = settings.rollout.environment

        def plan() -> list[str]:
            version = command.args.get("version") or self._default_version(model, request, forge, registry)
            shown = registry.show(model).get(model, {})
            holding = [stage for stage, held in (shown.get("stage") or {}).items() if held == version]
            stage = command.stage or next_stage(settings.registry.stages, holding)
            waiting = stage == settings.rollout.stage and stage in holding \
                and _rollout_waiting(forge, environment, version)
            return [version, stage, "release-hold" if waiting else "assign"]

        # Journalled: a resumed job must act on the plan it made, not re-plan from the state its
        # own first attempt changed (the next stage would then be one further).
        version, stage, mode = journal("plan", plan)
        self._check_stage(command, stage, settings, have)
        if mode == "release-hold":
            control = self._control()
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

    @staticmethod
    def _default_version(model: str, request: CommentCommand, forge: Forge, registry: RegistryLike) -> str:
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

    def _rollback(self, command: Command, request: CommentCommand, context: DeliveryContext,
                  settings: RepoSettings, have: Permission, journal: Journal,
                  dispatch: Callable[[str, dict[str, Any]], None]) -> str:
        forge = context.forge
        model = self._model(command, settings)
        stage = command.stage or settings.rollout.stage
        self._check_stage(command, stage, settings, have)
        registry = self._registry(context, settings)

        def plan() -> list[str]:
            current = registry.stage_version(model, stage)
            previous = _previous_version(registry.history(model), model, stage, current)
            if current is None or previous is None:
                raise RegistryError(f"`{model}` has no earlier version in `{stage}` to roll back to")
            return [current, previous]

        current, previous = journal("plan", plan)
        control = self._control() if stage == settings.rollout.stage else None
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


class CoolingDown(MlopsError):
    """A command asked for again before its cool-down is over; the message is the reply."""


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


class _Refused(Exception):
    def __init__(self, need: Permission) -> None:
        self.need = need


# ------------------------------------------------------------------------------------- helpers
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


def _reaction_probe(forge: Forge, comment_id: int, content: Reaction) -> Callable[[], bool | None] | None:
    """Whether a reaction is already there, when the forge can list them (the local forge). GitHub
    answers a repeated reaction with the existing one, so repeating it there is harmless."""
    listing = getattr(forge, "reactions", None)
    if not callable(listing):
        return None
    return lambda: True if content in listing(comment_id) else None


def _dispatch_probe(forge: Forge, delivery: str | None) -> Callable[[], bool | None] | None:
    """Whether this delivery's dispatch was sent, when the forge can list dispatches (the local
    forge). GitHub cannot list them: there the `delivery` key lets the workflow drop a repeat."""
    listing = getattr(forge, "dispatches", None)
    if delivery is None or not callable(listing):
        return None
    return lambda: True if any(d.get("client_payload", {}).get("delivery") == delivery
                               for d in listing()) else None


def _said(error: Exception) -> str:
    """An error message in a reply: bounded and inert (it may quote config or forge text)."""
    return escape.message(redaction.redact(str(error)))


def _keyed(payload: dict[str, Any], delivery: str | None) -> dict[str, Any]:
    return {**payload, "delivery": delivery} if delivery else payload


def _post_reply(forge: Forge, journal: Journal, number: int, text: str, delivery: str | None) -> None:
    if delivery is None:
        journal("reply", lambda: forge.create_comment(number, text).id)
        return
    marker = reply_marker(delivery)

    def posted() -> int | None:
        return next((c.id for c in forge.list_comments(number) if marker in c.body), None)

    journal("reply", lambda: forge.create_comment(number, f"{text}\n\n{marker}").id, posted)


def _previous_version(history: list[RegistryEvent], model: str, stage: str, current: str | None
                      ) -> str | None:
    """The version assigned to `stage` before `current`, from the registry history (any order)."""
    assigned = sorted((event.created_at, str(event.version)) for event in history
                      if event.name == model and event.stage == stage and event.action == Action.ASSIGN)
    versions = [version for _, version in assigned]
    while versions and versions[-1] == current:
        versions.pop()
    return versions[-1] if versions else None


def _rollout_waiting(forge: Forge, environment: str, version: str) -> bool:
    """Whether a rollout of this version is running in `environment` (a rollout holding at a
    manual step is `in_progress`): `deploy.control.running_rollout` decides what "running" is."""
    running = running_rollout(forge, environment)
    return running is not None and str(running[0].payload.get("version", "")) == version
