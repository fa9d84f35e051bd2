"""From a webhook event to actions: reactions, replies, registry changes, rollout control and
workflow dispatches.

`routing.route` is the pure decision (which events matter, who is ignored); `EventHandler` carries
it out through the Forge, the Registry and deploy control, each passed in so the same code runs in
the webhook server, in `mlops-bot bot handle-event` inside GitHub Actions, in the demo and in tests:
the permission check before any clone, the reply and reactions, `/help`, `/retrain` and `/drift`
(with the cool-down), `/accept-gates`, `/abort`; `/promote` and `/rollback` are in
`registry_commands`. Every side effect goes through `journal(step, action)` (`effects`) so a job
resumed after a crash skips what it already did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mlops_bot.bot.commands import Command, CommandSyntaxError, help_text, parse_command, required_permission
from mlops_bot.bot.effects import (
    Journal,
    dispatch_probe,
    keyed,
    post_reply,
    reaction_probe,
    run_now,
    said,
)
from mlops_bot.bot.registry_commands import (
    DeployControl,
    Refused,
    RegistryLike,
    promote,
    rollback,
)
from mlops_bot.bot.routing import (
    DRIFT_EVENT,
    RETRAIN_EVENT,
    CommentCommand,
    DeliveryContext,
    DispatchRequest,
    Ignore,
    RepoSettings,
    route,
)
from mlops_bot.config import BotSection
from mlops_bot.errors import MlopsError, RateLimited
from mlops_bot.forge.base import Forge, Reaction
from mlops_bot.permissions import REPOSITORY_FLOOR, Permission, permission_at_least

log = logging.getLogger("mlops_bot.bot")


# --------------------------------------------------------------------------------- collaborators
class Cooldowns(Protocol):
    """A shared clock of cool-downs (the queue's database): `take(key, now, seconds)` returns 0.0
    and starts the cool-down when it is over, else the seconds left."""

    def take(self, key: str, now: float, seconds: float) -> float: ...


ForgeFactory = Callable[[str, int | None], Forge]
SettingsLoader = Callable[[DeliveryContext], RepoSettings]
RegistryFactory = Callable[[DeliveryContext, RepoSettings], RegistryLike]


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
        client_payload = keyed(decision.client_payload, delivery)
        journal("dispatch", lambda: forge.repository_dispatch(decision.event_type, client_payload),
                dispatch_probe(forge, delivery))
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
            text = f"@{quick.author} cannot run commands: {said(error)}"
            journal("react-confused", lambda: forge.add_reaction(quick.comment_id, "confused"))
            post_reply(forge, journal, quick.number, text, delivery)
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
                    reaction_probe(forge, request.comment_id, content))

        def reply(text: str) -> None:
            post_reply(forge, journal, request.number, text, delivery)

        react("eyes")
        return react, reply

    def _command(self, request: CommentCommand, command: Command | None, syntax: CommandSyntaxError | None,
                 settings: RepoSettings, have: Permission, journal: Journal, context: DeliveryContext
                 ) -> Outcome:
        forge, delivery = context.forge, context.delivery

        def dispatch(event_type: str, payload: dict[str, Any]) -> None:
            sent = keyed(payload, delivery)
            journal("dispatch", lambda: forge.repository_dispatch(event_type, sent),
                    dispatch_probe(forge, delivery))

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
        except Refused as refused:
            return self._refuse(request, command, have, refused.need, react, reply)
        except RateLimited:
            raise  # the worker defers the job; the journal resumes it where it stopped
        except CoolingDown as cooling:
            text = f"@{request.author} {cooling}"
            react("confused")
            reply(text)
            return Outcome("refused", str(cooling), text)
        except MlopsError as error:
            text = f"@{request.author} `/{command.name}` failed: {said(error)}"
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
        registry_command = promote if command.name == "promote" else rollback
        return registry_command(command, request, context, settings, have, journal, dispatch,
                                lambda: self._registry(context, settings), self._control)

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

class CoolingDown(MlopsError):
    """A command asked for again before its cool-down is over; the message is the reply."""


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"
