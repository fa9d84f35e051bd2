"""The `bot` section: who may run which comment command, and what the webhook bot dispatches."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from mlops_bot.config.fields import Duration, Strict, parse_duration
from mlops_bot.permissions import REPOSITORY_FLOOR, Permission, permission_at_least

DispatchEvent = Literal["pull_request", "push"]
_DISPATCH_EVENTS: tuple[DispatchEvent, ...] = ("pull_request", "push")


class BotSection(Strict):
    permission: Permission = "write"
    commands: dict[str, Permission] = Field(default_factory=dict)
    ignore_bots: bool = True
    handle_edits: bool = False
    dispatch_on: list[DispatchEvent] = Field(
        default_factory=lambda: list(_DISPATCH_EVENTS),
        description="events the webhook bot turns into repository_dispatch (mlops-validate, mlops-deploy); "
        "empty when the workflows already trigger on them",
    )
    retrain_cooldown: Duration = Field(default=1800.0, description="least time between two /retrain "
                                       "of one model (0: no cool-down)")

    @field_validator("retrain_cooldown", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)

    @field_validator("permission")
    @classmethod
    def _floor(cls, value: Permission) -> Permission:
        if not permission_at_least(value, REPOSITORY_FLOOR):
            raise ValueError(f"commands need at least {REPOSITORY_FLOOR!r} (the bot does no repository "
                             "work for accounts below it: on a public repository everyone has 'read')")
        return value

    @field_validator("commands")
    @classmethod
    def _known_commands(cls, value: dict[str, Permission]) -> dict[str, Permission]:
        from mlops_bot.bot.commands import COMMANDS  # the command list lives with the parser

        for name, permission in value.items():
            if name not in COMMANDS:
                raise ValueError(f"unknown command {name!r} (commands: {', '.join(COMMANDS)})")
            if name != "help" and not permission_at_least(permission, REPOSITORY_FLOOR):
                raise ValueError(f"/{name} needs at least {REPOSITORY_FLOOR!r}, got {permission!r} (the bot "
                                 "does no repository work for accounts below it)")
        return value
