"""The bot's side effects on the forge, each run through a `Journal` so a job resumed after a crash
does not repeat it: replies carry a hidden marker of their delivery, dispatches carry the delivery
as their idempotency key, and where the forge can list reactions or dispatches (the local forge) a
probe finds an effect that happened just before a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from mlops_bot import redaction
from mlops_bot.forge.base import Forge, Reaction
from mlops_bot.report import escape

T = TypeVar("T")


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


def reaction_probe(forge: Forge, comment_id: int, content: Reaction) -> Callable[[], bool | None] | None:
    """Whether a reaction is already there, when the forge can list them (the local forge). GitHub
    answers a repeated reaction with the existing one, so repeating it there is harmless."""
    listing = getattr(forge, "reactions", None)
    if not callable(listing):
        return None
    return lambda: True if content in listing(comment_id) else None


def dispatch_probe(forge: Forge, delivery: str | None) -> Callable[[], bool | None] | None:
    """Whether this delivery's dispatch was sent, when the forge can list dispatches (the local
    forge). GitHub cannot list them: there the `delivery` key lets the workflow drop a repeat."""
    listing = getattr(forge, "dispatches", None)
    if delivery is None or not callable(listing):
        return None
    return lambda: True if any(d.get("client_payload", {}).get("delivery") == delivery
                               for d in listing()) else None


def said(error: Exception) -> str:
    """An error message in a reply: bounded and inert (it may quote config or forge text)."""
    return escape.message(redaction.redact(str(error)))


def keyed(payload: dict[str, Any], delivery: str | None) -> dict[str, Any]:
    return {**payload, "delivery": delivery} if delivery else payload


def post_reply(forge: Forge, journal: Journal, number: int, text: str, delivery: str | None) -> None:
    if delivery is None:
        journal("reply", lambda: forge.create_comment(number, text).id)
        return
    marker = reply_marker(delivery)

    def posted() -> int | None:
        return next((c.id for c in forge.list_comments(number) if marker in c.body), None)

    journal("reply", lambda: forge.create_comment(number, f"{text}\n\n{marker}").id, posted)
