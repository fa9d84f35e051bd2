"""Two bot replicas on one real PostgreSQL, against the GitHub emulator with App credentials: they
share one installation token (one mint per installation per expiry window, the git clones
included) and GitHub's rate limits (a secondary limit one replica meets defers the other's jobs
before it sends a request; every job is still done once when the limit lifts)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from bot_testkit import REPO, BotProcess, World, comment_payload, signed, wait_for
from prometheus_client.parser import text_string_to_metric_families

from github_emulator import Emulator
from mlops_bot.bot.queue_postgres import PostgresQueue

pytestmark = pytest.mark.slow
APP_ID = 7171
INSTALLATION = 100
BLOCK_SECONDS = 15  # past the bot's inline wait (10 s): the job is deferred, not slept through


def test_replicas_share_the_installation_token_and_the_rate_limit(
        world: World, tmp_path: Path, postgres: Any, app_keys: tuple[str, str]) -> None:
    private, public = app_keys
    url = postgres.database()
    queue = PostgresQueue(url)
    with Emulator(app_id=APP_ID, app_public_key=public) as gh, httpx.Client(timeout=10) as client:
        gh.add_repo(REPO)
        gh.add_pull(REPO, 7)
        gh.set_permission(REPO, "bob", "write")
        gh.add_installation(INSTALLATION, [REPO])
        env = {"MLOPS_BOT_DATABASE_URL": url, "MLOPS_BOT_LOCAL_FORGE": "", "MLOPS_BOT_APP_ID": str(APP_ID),
               "MLOPS_BOT_APP_PRIVATE_KEY": private, "GITHUB_API_URL": gh.url}

        def mints() -> int:
            return sum(1 for row in gh.public_state()["installation_tokens"].values()
                       if row["installation_id"] == INSTALLATION)

        def deliver(bot: BotProcess, delivery: str) -> None:
            row = gh.add_comment(REPO, 7, "/drift", user="bob")
            payload = comment_payload("/drift", number=7, comment_id=row["id"], login="bob")
            payload["installation"] = {"id": INSTALLATION}
            body, headers = signed(payload, "issue_comment", delivery=delivery)
            assert client.post(f"{bot.url}/webhook", content=body, headers=headers).status_code == 202

        def status(delivery: str) -> tuple[str, str]:
            job = next(j for j in queue.jobs() if j["delivery"] == delivery)
            return str(job["status"]), str(job["error"] or "")

        first = BotProcess(world, tmp_path / "a", env=env).start()
        second = BotProcess(world, tmp_path / "b", env=env)
        try:
            for i in range(3):
                deliver(first, f"a-{i}")
            wait_for(lambda: queue.depth() == 0, 60, "the first replica's jobs")
            assert mints() == 1  # its forge and its git clone share the one token

            # a secondary limit on the dispatch: the first replica's job is deferred (not failed)
            gh.inject(r"/dispatches$", status=403, headers={"Retry-After": str(BLOCK_SECONDS)})
            deliver(first, "limited")
            wait_for(lambda: status("limited")[1].startswith("deferred"), 60, "the job deferred")
            limited = next(r for r in gh.requests if r["path"].endswith("/dispatches") and r["status"] == 403)
            block_until = limited["time"] + BLOCK_SECONDS
            first.kill()

            # a fresh replica, which never spoke to GitHub: the database tells it the token and the limit
            second.start()
            seen = len(gh.requests)
            for i in range(4):
                deliver(second, f"b-{i}")
            wait_for(lambda: all(status(f"b-{i}")[0] == "done" or status(f"b-{i}")[1].startswith("deferred")
                                 for i in range(4)), 60, "the second replica's jobs deferred")
            during = [r for r in gh.requests[seen:] if r["time"] < block_until]
            assert during == [], during  # nothing sent while the limit held
            assert mints() == 1

            wait_for(lambda: queue.depth() == 0, 90, "every job once the limit lifted")
            assert mints() == 1
            metrics = client.get(f"{second.url}/metrics").text
            deferred = [s.value for family in text_string_to_metric_families(metrics)
                        for s in family.samples if s.name == "mlops_bot_job_deferrals_total"]
            assert deferred and deferred[0] >= 1  # the first replica's deferral, read from the database
        finally:
            first.kill()
            second.kill()
    jobs = queue.jobs()
    queue.close()
    assert Counter(j["status"] for j in jobs) == {"done": 8}, jobs
    dispatched = Counter(d["client_payload"]["delivery"] for d in gh.public_state()["dispatches"])
    assert dispatched == Counter(["a-0", "a-1", "a-2", "limited", "b-0", "b-1", "b-2", "b-3"])
    assert all(j["attempts"] == 1 for j in jobs), jobs  # a deferral is not an attempt
