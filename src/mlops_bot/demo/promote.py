"""Demo chapter "promote": comment commands on the PR, carried out by the bot's own code.

Comments are posted on the PR in the local forge and delivered to the bot as GitHub would deliver
them (an `issue_comment` payload in the bot's durable queue); the bot's worker then does exactly what
the webhook server does: reactions, the permission check, the registry (tags pushed to origin),
rollout control, `repository_dispatch`, and a reply.

1. `/promote production` moves main's baseline (in staging since the registry chapter) to production.
2. The PR's validated model is registered; `/promote staging` puts it in staging.
3. A reader (read permission) trying `/promote production` is refused.
4. The PR is merged; GitHub's `push` event for main reaches the bot, which dispatches the deploy
   workflow (the rollout chapter plays that workflow).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_bot.bot.checkout import settings_from_directory
from mlops_bot.bot.handlers import EventHandler, default_deploy_control
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.bot.registry_commands import RegistryLike
from mlops_bot.bot.routing import DeliveryContext, RepoSettings
from mlops_bot.bot.worker import Worker
from mlops_bot.demo.project import git
from mlops_bot.forge.local import LocalForge
from mlops_bot.registry.artifacts import KNOWN_ASSETS
from mlops_bot.registry.registry import Registry

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext

BOT = "mlops-bot[bot]"
EMOJI = {"eyes": "👀", "rocket": "🚀", "confused": "😕"}


def _payload(forge: LocalForge, number: int, comment_id: int, body: str, login: str) -> dict[str, Any]:
    """The fields of GitHub's issue_comment payload the bot reads."""
    return {
        "action": "created",
        "repository": {"full_name": forge.repo, "default_branch": "main"},
        "issue": {"number": number, "pull_request": {"url": f"{forge.repo}/pulls/{number}"}},
        "comment": {"id": comment_id, "body": body, "user": {"login": login, "type": "User"}},
    }


def run(ctx: DemoContext) -> None:
    ctx.chapter("Promote: /promote comments on the PR, handled by the bot")
    number = ctx.state.get("pr_number")
    name = ctx.state.get("model_name")
    if number is None or name is None:
        ctx.say("no pull request from the earlier chapters: skipped")
        return
    ctx.forge.set_permission("carol", "read")
    bot_forge = LocalForge(ctx.forge.root, repo=ctx.forge.repo, actor=BOT)

    def settings_for(_context: DeliveryContext) -> RepoSettings:
        return settings_from_directory(ctx.repo)

    def registry_for(context: DeliveryContext, settings: RepoSettings) -> RegistryLike:
        return Registry(ctx.repo, forge=context.forge, remote="origin", policy=settings.registry)

    handler = EventHandler(lambda _repo, _inst: bot_forge, settings_for, registry_for,
                           default_deploy_control())
    queue = SqliteQueue(ctx.workdir / "bot-state" / "queue.sqlite3")
    worker = Worker(queue, handler)
    registry = Registry(ctx.repo, forge=ctx.forge, remote="origin")

    def command(body: str, login: str) -> None:
        comment = ctx.forge.create_comment(number, body, user=login)
        payload = _payload(ctx.forge, number, comment.id, body, login)
        queue.enqueue(f"demo-{comment.id}", "issue_comment", json.dumps(payload).encode(), time.time())
        worker.drain()
        reactions = " ".join(EMOJI.get(r, r) for r in bot_forge.reactions(comment.id))
        reply = [c for c in bot_forge.list_comments(number) if c.user == BOT][-1].body
        ctx.say(f"@{login}: {body}   [{reactions}]")
        ctx.say("  bot: " + reply.split("\n\n<!--")[0].replace("\n", "\n       "))

    baseline = ctx.state.get("registry_version")
    if baseline:
        # Two models in this repository: a command without model= gets the list of names.
        command(f"/promote production version={baseline}", ctx.forge.actor)
        command(f"/promote production version={baseline} model={name}", ctx.forge.actor)

    head_dir, head_sha = ctx.state.get("head_report_dir"), ctx.state.get("head_sha")
    if head_dir is not None and head_sha is not None and (Path(head_dir) / "model.skops").is_file():
        files = {n: Path(head_dir) / n for n in KNOWN_ASSETS
                 if (Path(head_dir) / n).is_file()}
        report = json.loads(files["report.json"].read_text()) if "report.json" in files else {}
        event = registry.register(name, ref=head_sha, artifacts=files, push=True, actor=ctx.forge.actor,
                                  trailers={"Verdict": str(report.get("verdict", "pass"))})
        ctx.say(f"the PR's model is registered as {event.tag}")
        command(f"/promote staging model={name}", ctx.forge.actor)
        command(f"/promote production model={name}", "carol")

    branch = ctx.state.get("branch")
    if branch:
        git(ctx.repo, "checkout", "-q", "main")
        git(ctx.repo, "merge", "-q", "--no-ff", branch, "-m", f"Merge pull request #{number} from {branch}")
        git(ctx.repo, "push", "-q", "origin", "main")
        merged = git(ctx.repo, "rev-parse", "HEAD").strip()
        ctx.forge.update_pull_request(number, merged=True, state="closed")
        ctx.state["merge_sha"] = merged
        push = {"ref": "refs/heads/main", "after": merged, "deleted": False,
                "repository": {"full_name": ctx.forge.repo, "default_branch": "main"}}
        queue.enqueue(f"demo-push-{merged[:12]}", "push", json.dumps(push).encode(), time.time())
        worker.drain()
        ctx.say(f"PR #{number} merged into main at {merged[:8]} and pushed; GitHub's push event reached the "
                "bot, which dispatched the deploy workflow")

    sent = [d for d in bot_forge.dispatches() if d["event_type"] == "mlops-deploy"]
    ctx.say(f"deploy workflow dispatches (repository_dispatch mlops-deploy): {len(sent)}; registry now: "
            + json.dumps(registry.show(name).get(name, {}).get("stage", {})))
