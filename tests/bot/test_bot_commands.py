"""The comment-command grammar and the permission rules, as pure functions."""

from __future__ import annotations

import pytest

from mlops_bot.bot.commands import (
    COMMANDS,
    Command,
    CommandSyntaxError,
    help_text,
    next_stage,
    parse_command,
    permission_at_least,
    required_permission,
)
from mlops_bot.config import BotSection, RegistrySection, StagePolicy


def test_first_line_only_with_positional_and_key_value_arguments() -> None:
    command = parse_command("  /promote production version=v1.2.3\nLGTM, shipping it.\n/abort")
    assert command == Command("promote", ("production",), {"version": "v1.2.3"})
    assert command.stage == "production"
    assert parse_command("/PROMOTE") == Command("promote")
    assert parse_command("/rollback staging model=team/churn") == Command(
        "rollback", ("staging",), {"model": "team/churn"})
    assert parse_command("/abort environment=prod-eu") == Command("abort", (), {"environment": "prod-eu"})
    for name in ("retrain", "drift", "help"):
        assert parse_command(f"/{name}") == Command(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [
    "", "thanks!", "Looks good\n/promote production", "> /promote production", "/ promote", "//promote",
    "`/promote`",
])
def test_text_that_is_not_a_command(body: str) -> None:
    assert parse_command(body) is None


@pytest.mark.parametrize(("body", "message"), [
    ("/deploy now", "unknown command `/deploy`"),
    ("/promote staging production", "too many arguments"),
    ("/promote staging version=1.2.3", "is not a version like `v1.2.3`"),
    ("/promote staging flavour=fast", "does not take `flavour=`"),
    ("/promote version=", "needs a value"),
    ("/promote version=v1.0.0 version=v1.0.1", "given twice"),
    ("/promote st;ge", "not a valid stage name"),
    ("/abort now", "too many arguments"),
    ("/retrain model=bad..name!", "not a valid model name"),
    ("/help me", "too many arguments"),
])
def test_syntax_errors_explain_usage(body: str, message: str) -> None:
    with pytest.raises(CommandSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_command(body)
    known = body.split()[0][1:] in COMMANDS
    assert (info.value.command is not None) == known
    if known:
        assert "Usage" in str(info.value) or "model name" in str(info.value)


def test_permission_order() -> None:
    assert permission_at_least("admin", "write")
    assert permission_at_least("write", "write")
    assert not permission_at_least("triage", "write")
    assert not permission_at_least("none", "read")


def test_required_permission_layers_bot_config_command_defaults_and_stage_policy() -> None:
    bot = BotSection(permission="write", commands={"drift": "triage", "retrain": "maintain"})
    registry = RegistrySection(stages=["staging", "production"],
                               policy={"production": StagePolicy(permission="admin")})
    assert required_permission(Command("drift"), bot) == "triage"
    assert required_permission(Command("retrain"), bot) == "maintain"
    assert required_permission(Command("abort"), bot) == "write"
    assert required_permission(Command("help"), bot) == "none"
    assert required_permission(Command("help"), BotSection(commands={"help": "read"})) == "read"
    promote = Command("promote", ("production",))
    assert required_permission(promote, bot) == "write"
    assert required_permission(promote, bot, registry) == "admin"
    assert required_permission(Command("promote"), bot, registry, stage="production") == "admin"
    assert required_permission(Command("promote", ("staging",)), bot, registry) == "write"
    # The stage policy never lowers what the bot config demands.
    strict = BotSection(commands={"promote": "maintain"})
    lax = RegistrySection(stages=["staging"], policy={"staging": StagePolicy(permission="read")})
    assert required_permission(Command("promote", ("staging",)), strict, lax) == "maintain"


def test_next_stage_walks_the_configured_order() -> None:
    stages = ["dev", "staging", "production"]
    assert next_stage(stages, []) == "dev"
    assert next_stage(stages, ["dev"]) == "staging"
    assert next_stage(stages, ["staging", "dev"]) == "production"
    assert next_stage(stages, ["unknown"]) == "dev"
    with pytest.raises(CommandSyntaxError, match="already in the last stage `production`"):
        next_stage(stages, ["production"])


def test_help_lists_every_command_with_its_permission() -> None:
    text = help_text(BotSection(commands={"drift": "triage"}))
    for spec in COMMANDS.values():
        assert spec.usage in text
    assert "| `/drift [model=NAME]` |" in text and "| triage |" in text
