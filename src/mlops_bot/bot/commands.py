"""The comment-command grammar and who may run what: pure functions over text and config.

Conventions follow prow and slash-command-dispatch: the command is the first line of the comment,
positional words then `key=value` arguments; permissions are ordered
none < read < triage < write < maintain < admin and checked against the commenter's permission on
the repository (the collaborator-permission API).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from mlops_bot.config import BotSection, RegistrySection
from mlops_bot.errors import MlopsError
from mlops_bot.permissions import Permission, permission_at_least
from mlops_bot.registry.tags import NAME_RE, SEMVER_RE, is_valid_name
from mlops_bot.report.escape import quote

CommandName = Literal["promote", "rollback", "abort", "retrain", "drift", "accept-gates", "help"]


@dataclass(frozen=True)
class CommandSpec:
    """What a command accepts: how many positional words, which keys, and its one-line help."""

    usage: str
    summary: str
    max_positional: int = 0
    keys: frozenset[str] = frozenset()
    default_permission: Permission | None = None  # None: the bot-wide default (`bot.permission`)


COMMANDS: dict[str, CommandSpec] = {
    "promote": CommandSpec(
        "/promote [STAGE] [version=vX.Y.Z] [model=NAME]",
        "assign the version (default: the latest) to STAGE (default: the next stage) and deploy it; "
        "during a rollout waiting for a manual promote, let it proceed",
        1, frozenset({"version", "model"}),
    ),
    "rollback": CommandSpec(
        "/rollback [STAGE] [model=NAME]",
        "put the previous version back in STAGE (default: the rollout stage) and stop the rollout",
        1, frozenset({"model"}),
    ),
    "abort": CommandSpec(
        "/abort [model=NAME] [environment=ENV]",
        "abort the running canary rollout (in the model's environment): all traffic back to stable",
        0, frozenset({"environment", "model"}),
    ),
    "retrain": CommandSpec(
        "/retrain [model=NAME]", "start the retraining workflow (repository_dispatch mlops-retrain)",
        0, frozenset({"model"}),
    ),
    "drift": CommandSpec(
        "/drift [model=NAME]", "start the drift check workflow (repository_dispatch mlops-drift)",
        0, frozenset({"model"}),
    ),
    "accept-gates": CommandSpec(
        "/accept-gates",
        "judge this PR's head commit by the gates it changes instead of the base branch's (recorded "
        "in the bot's reply; the comment job honours it from the next validation run)",
        0, frozenset(), default_permission="maintain",
    ),
    "help": CommandSpec("/help", "list the commands", 0, frozenset(), default_permission="none"),
}

# Model names, stages and versions follow the registry's grammar (registry/tags.py), so the bot
# accepts exactly what the registry can tag: `dir:name` yes, `dir=name` (the tag spelling) no.
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # environment names (deployments)
_COMMAND_LINE = re.compile(r"^/([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$")
_COMMAND_WORD = re.compile(r"^/([A-Za-z]+)")


class CommandSyntaxError(MlopsError):
    """A comment looked like a command but cannot be run as written; the message is the reply."""

    def __init__(self, message: str, command: str | None = None) -> None:
        self.command = command
        super().__init__(message)


@dataclass(frozen=True)
class Command:
    name: CommandName
    positional: tuple[str, ...] = ()
    args: dict[str, str] = field(default_factory=dict)

    @property
    def stage(self) -> str | None:
        return self.positional[0] if self.positional else None


def parse_command(body: str) -> Command | None:
    """The command on the first line of a comment; None when the comment is not a command.

    Raises CommandSyntaxError for an unknown command or bad arguments, with a message meant as the
    bot's reply."""
    lines = body.strip().splitlines()
    first = lines[0].strip() if lines else ""
    match = _COMMAND_LINE.match(first)
    if not match:
        # `/promote,` or `/promote:staging` is a command typed wrong, which deserves an answer;
        # `/path/to/file` or `/ note` is prose.
        word = _COMMAND_WORD.match(first)
        known = word.group(1).lower() if word else ""
        if known in COMMANDS:
            raise CommandSyntaxError(
                f"{quote(first.split()[0])} is not a command as written. Usage: `{COMMANDS[known].usage}`",
                known,
            )
        return None
    name = match.group(1).lower()
    spec = COMMANDS.get(name)
    if spec is None:
        raise CommandSyntaxError(f"unknown command {quote('/' + name)}.")
    positional: list[str] = []
    args: dict[str, str] = {}
    for token in (match.group(2) or "").split():
        if "=" in token:
            key, _, value = token.partition("=")
            key = key.lower()
            if key not in spec.keys:
                allowed = ", ".join(sorted(spec.keys)) or "none"
                raise CommandSyntaxError(
                    f"`/{name}` does not take {quote(key + '=')} (allowed: {allowed}). "
                    f"Usage: `{spec.usage}`",
                    name,
                )
            if not value:
                raise CommandSyntaxError(f"`{key}=` needs a value. Usage: `{spec.usage}`", name)
            if key in args:
                raise CommandSyntaxError(f"`{key}=` is given twice. Usage: `{spec.usage}`", name)
            args[key] = value
        else:
            positional.append(token)
    if len(positional) > spec.max_positional:
        raise CommandSyntaxError(f"too many arguments. Usage: `{spec.usage}`", name)
    for stage in positional:
        if not NAME_RE.match(stage):
            raise CommandSyntaxError(f"{quote(stage)} is not a valid stage name. Usage: `{spec.usage}`",
                                     name)
    if "version" in args and not SEMVER_RE.match(args["version"]):
        raise CommandSyntaxError(
            f"{quote('version=' + args['version'])} is not a version like `v1.2.3`. Usage: `{spec.usage}`",
            name,
        )
    if "model" in args and not is_valid_name(args["model"]):
        raise CommandSyntaxError(f"{quote('model=' + args['model'])} is not a valid model name "
                                 "(letters, digits, `-`, `_`, `/`; monorepo form `dir:name`).", name)
    if "environment" in args and not _WORD.match(args["environment"]):
        raise CommandSyntaxError(f"{quote('environment=' + args['environment'])} is not a valid name.", name)
    return Command(name=name, positional=tuple(positional), args=args)  # type: ignore[arg-type]


def required_permission(
    command: Command, bot: BotSection, registry: RegistrySection | None = None, stage: str | None = None
) -> Permission:
    """The permission the commenter needs: `bot.commands[name]`, else the command's own default,
    else `bot.permission`; for /promote and /rollback never less than the stage's policy."""
    spec = COMMANDS[command.name]
    need: Permission = bot.commands.get(command.name) or spec.default_permission or bot.permission
    if command.name == "accept-gates" and not permission_at_least(need, "maintain"):
        need = "maintain"  # a PR's own gates are accepted by a maintainer, whatever bot.commands says
    target = stage or command.stage
    if registry is not None and target and command.name in ("promote", "rollback") \
            and target in registry.stages:
        stage_need = registry.stage_policy(target).permission
        if not permission_at_least(need, stage_need):
            need = stage_need
    return need


def next_stage(stages: list[str], current: list[str]) -> str:
    """Default target of /promote: the stage after the highest one the version already holds."""
    held = [stages.index(s) for s in current if s in stages]
    if not held:
        return stages[0]
    top = max(held)
    if top + 1 >= len(stages):
        raise CommandSyntaxError(
            f"the version is already in the last stage `{stages[top]}`; name a stage to re-assign it.",
            "promote",
        )
    return stages[top + 1]


def help_text(bot: BotSection) -> str:
    """The /help reply (also the reply to an unknown command)."""
    rows = ["| Command | What it does | Needs |", "|---|---|---|"]
    for name, spec in COMMANDS.items():
        need = bot.commands.get(name) or spec.default_permission or bot.permission
        rows.append(f"| `{spec.usage}` | {spec.summary} | {need} |")
    return (
        "mlops-bot commands (first line of a PR comment, `key=value` arguments):\n\n" + "\n".join(rows)
        + "\n\nPromotions also follow the registry policy (stage order, per-stage permission, gates)."
    )
