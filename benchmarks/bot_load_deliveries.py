"""The deliveries of the bot benchmark (bot_load.py): GitHub's own `issue_comment` example payload
from `@octokit/webhooks-examples`, made unique per delivery and signed as GitHub signs it.

Both receivers (ours and Probot) get the same bytes. Our bot de-duplicates on an idempotency key
built from the signed body (the comment id and action, `mlops_bot.bot.events.event_key`), so a body
sent twice under two delivery ids is stored once: every delivery here carries its own comment id and
its own signature. Every `command_every`-th is a `/drift` command on a pull request of the local
forge (body, `issue.number` and `issue.pull_request` set), so the bot has real work to do and
exactly-once can be counted; the others are the example as GitHub sends it (a comment on an issue,
which our bot looks at and drops, as Probot's no-op app does).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_bot.bot.signature import sign

EXAMPLES = Path("node_modules/@octokit/webhooks-examples/api.github.com/index.json")
EVENT = "issue_comment"
COMMAND = "/drift"  # /retrain has a per-model cool-down: /drift can be asked for many times


@dataclass(frozen=True)
class SignedDelivery:
    delivery: str  # X-GitHub-Delivery
    event: str  # X-GitHub-Event
    body: bytes
    signature: str  # X-Hub-Signature-256
    command: bool  # a /drift command (work to do, counted exactly once)

    def headers(self) -> dict[str, str]:
        return {"X-GitHub-Event": self.event, "X-GitHub-Delivery": self.delivery,
                "X-Hub-Signature-256": self.signature, "Content-Type": "application/json"}


def example_payload(app_dir: Path, action: str = "created") -> dict[str, Any]:
    """The first `issue_comment` example with `action` from the installed npm package."""
    path = app_dir / EXAMPLES
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `npm ci` in {app_dir}")
    groups = json.loads(path.read_text())
    for group in groups:
        if group.get("name") == EVENT:
            for example in group.get("examples", []):
                if example.get("action") == action:
                    return dict(example)
    raise LookupError(f"{path} has no {EVENT} example with action {action!r}")


def build_deliveries(example: dict[str, Any], secret: str, count: int, *, prefix: str, first_comment_id: int,
                     command_every: int = 0, pull_request: int = 0,
                     command_comment: Callable[[], int] | None = None) -> list[SignedDelivery]:
    """`count` signed deliveries of `example`, delivery ids `{prefix}-{i}`, comment ids from
    `first_comment_id` on; every `command_every`-th (0: none) a command whose comment id comes from
    `command_comment()` (a comment created in the forge, so reactions and replies land on it)."""
    if any(c.isspace() for c in prefix):
        raise ValueError("a delivery id prefix has no spaces (replies carry the id up to a space)")
    out = []
    for index in range(count):
        payload = copy.deepcopy(example)
        comment, issue = payload["comment"], payload["issue"]
        command = bool(command_every) and index % command_every == 0
        if command:
            comment["id"] = command_comment() if command_comment is not None else first_comment_id + index
            comment["body"] = COMMAND
            issue["number"] = pull_request
            issue["pull_request"] = {"url": f"https://api.github.com/repos/{payload['repository']['full_name']}"
                                            f"/pulls/{pull_request}"}
        else:
            comment["id"] = first_comment_id + index
        comment["node_id"] = f"IC_bench{comment['id']}"
        body = json.dumps(payload, separators=(",", ":")).encode()
        out.append(SignedDelivery(f"{prefix}-{index}", EVENT, body, sign(secret, body), command))
    return out


def write_wrk_requests(items: list[SignedDelivery], path: Path) -> Path:
    """The deliveries for the wrk Lua script (bot_load_wrk.lua): three lines each (delivery id,
    signature, body; compact JSON has no newline)."""
    with path.open("wb") as out:
        for item in items:
            if b"\n" in item.body:
                raise ValueError("a body for wrk must be one line")
            out.write(item.delivery.encode() + b"\n" + item.signature.encode() + b"\n" + item.body + b"\n")
    return path
