"""What replicas share of GitHub through the queue database (forge/shared_quota.py), on both
backends: the installation token (one mint per installation per expiry window, whatever the number
of processes asking at once) and the rate-limit budget (a limit one replica meets stops the others
before they send a request). Each "replica" is its own queue connection to the same database,
against the GitHub emulator."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from github import Auth

from github_emulator import Emulator
from mlops_bot.bot.queue_sqlite import SqliteQueue
from mlops_bot.errors import RateLimited
from mlops_bot.forge.auth import AppInstallationAuth
from mlops_bot.forge.github import GitHubForge
from mlops_bot.forge.retry import RetryPolicy
from mlops_bot.forge.shared_quota import RateLimitGate, limits_key

APP_ID = 6161
REPO = "acme/churn"
OpenStore = Callable[[], Any]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Opens another connection ("replica") to the test's one database."""
    opened: list[Any] = []
    if request.param == "sqlite":
        def make() -> Any:
            opened.append(SqliteQueue(tmp_path / "q.sqlite3"))
            return opened[-1]
    else:
        from mlops_bot.bot.queue_postgres import PostgresQueue

        url = request.getfixturevalue("postgres").database()

        def make() -> Any:
            opened.append(PostgresQueue(url))
            return opened[-1]
    yield make
    for store in opened:
        store.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def mints(gh: Emulator, installation: int) -> list[str]:
    return [t for t, row in gh.public_state()["installation_tokens"].items()
            if row["installation_id"] == installation]


def test_update_shared_is_atomic_across_connections(open_store: OpenStore) -> None:
    stores = [open_store(), open_store()]

    def add_one(row: dict[str, Any] | None) -> dict[str, Any]:
        return {"n": (row or {"n": 0})["n"] + 1}

    def bump(store: Any) -> None:
        for _ in range(25):
            store.update_shared("counter", add_one)

    threads = [threading.Thread(target=bump, args=(store,)) for store in stores for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[1].shared("counter") == {"n": 100}  # no update lost between the read and the write
    stores[0].update_shared("counter", lambda _row: None)
    assert stores[1].shared("counter") is None


def test_one_token_mint_per_installation_per_expiry_window(
        open_store: OpenStore, app_keys: tuple[str, str]) -> None:
    private, public = app_keys
    clock = Clock()
    with Emulator(clock=clock, app_id=APP_ID, app_public_key=public) as gh:
        gh.add_repo(REPO)
        gh.add_installation(100, [REPO])
        gh.add_installation(200, ["acme/other"])
        # six caches (three replicas x forge and git, as the bot has) asking at the same moment
        caches = [AppInstallationAuth(APP_ID, private, api_url=gh.url, installation_id=100, clock=clock,
                                      shared=open_store()) for _ in range(3) for _ in range(2)]
        tokens: list[str] = []

        def ask(cache: AppInstallationAuth) -> None:
            tokens.append(cache.token())

        threads = [threading.Thread(target=ask, args=(cache,)) for cache in caches]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(mints(gh, 100)) == 1
        assert tokens == mints(gh, 100) * 6
        # the database holds the token sealed, never in clear
        stored = caches[0].shared.shared(f"github-installation-token:{gh.url}:100")  # type: ignore[union-attr]
        assert stored is not None and tokens[0] not in str(stored)

        # another installation has its own token; a repository finds its installation first
        other = AppInstallationAuth(APP_ID, private, api_url=gh.url, repo=REPO, clock=clock,
                                    shared=open_store())
        assert other.token() == tokens[0] and len(mints(gh, 100)) == 1  # installation 100 already has one
        assert AppInstallationAuth(APP_ID, private, api_url=gh.url, installation_id=200, clock=clock,
                                   shared=open_store()).token() != tokens[0]

        # 56 minutes on: inside the refresh margin, the first asker mints and every cache takes it
        clock.now += 3600 - 240
        renewed = {cache.token() for cache in caches}
        assert len(mints(gh, 100)) == 2 and renewed == {t for t in mints(gh, 100) if t != tokens[0]}


def test_a_key_from_another_app_key_is_not_opened_but_replaced(
        open_store: OpenStore, app_keys: tuple[str, str]) -> None:
    private, public = app_keys
    clock = Clock()
    with Emulator(clock=clock, app_id=APP_ID, app_public_key=public) as gh:
        gh.add_repo(REPO)
        gh.add_installation(100, [REPO])
        first = AppInstallationAuth(APP_ID, private, api_url=gh.url, installation_id=100, clock=clock,
                                    shared=open_store())
        first.token()
        row = first.shared.shared(f"github-installation-token:{gh.url}:100")  # type: ignore[union-attr]
        assert row is not None
        tampered = {**row, "token": "gAAAA" + row["token"][5:-4] + "AAAA"}
        first.shared.update_shared(f"github-installation-token:{gh.url}:100",  # type: ignore[union-attr]
                                   lambda _row: tampered)
        second = AppInstallationAuth(APP_ID, private, api_url=gh.url, installation_id=100, clock=clock,
                                     shared=open_store())
        assert second.token() in mints(gh, 100) and len(mints(gh, 100)) == 2


def test_a_limit_met_by_one_replica_stops_the_other_before_it_sends(open_store: OpenStore) -> None:
    clock = Clock()
    with Emulator(clock=clock) as gh:
        gh.add_repo(REPO)
        gh.add_pull(REPO, 7)
        policy = RetryPolicy(total=2, backoff_factor=0.01, max_wait=5.0)
        key = limits_key(gh.url, "installation:100")
        slept: list[float] = []
        forges = [GitHubForge(REPO, Auth.Token("ghs_shared"), api_url=gh.url, retry=policy,
                              limits=RateLimitGate(open_store(), key, clock=clock, sleep=slept.append,
                                                   inline_wait=5.0)) for _ in range(2)]
        first, second = forges
        assert first.get_pull_request(7).number == 7
        gh.inject(r"/pulls/7$", status=403, headers={"Retry-After": "120"})
        with pytest.raises(RateLimited) as limited:
            first.get_pull_request(7)
        assert limited.value.until == clock.now + 120
        sent = len(gh.requests)
        with pytest.raises(RateLimited, match="GitHub rate limit"):
            second.get_pull_request(7)
        with pytest.raises(RateLimited):
            second.list_comments(7)
        assert len(gh.requests) == sent  # the other replica sent nothing while the limit held
        clock.now += 121
        assert second.get_pull_request(7).number == 7

        # a budget run down to the reserve: both wait for the reset (briefly here: inline)
        gh.rate_limit = gh.state["rate_used"]["ghs_shared"] + 11
        first.get_pull_request(7)  # answer with 10 left: shared
        reset = int(clock.now) + 3600
        assert forges[1].limits is not None
        shared = forges[1].limits.store.shared(key)
        assert shared["remaining"] == 10 and shared["reset_at"] == reset
        with pytest.raises(RateLimited):
            second.get_pull_request(7)
        assert slept == []


def test_writes_of_two_replicas_are_paced_as_one_client(open_store: OpenStore) -> None:
    clock = Clock()
    with Emulator(clock=clock) as gh:
        gh.add_repo(REPO)
        gh.add_pull(REPO, 7)
        key = limits_key(gh.url, "installation:100")
        slept: list[float] = []
        first, second = (GitHubForge(REPO, Auth.Token("ghs_shared"), api_url=gh.url,
                                     seconds_between_writes=1.0,
                                     limits=RateLimitGate(open_store(), key, clock=clock, sleep=slept.append))
                         for _ in range(2))
        first.create_comment(7, "one")
        second.create_comment(7, "two")  # same instant: waits for the first replica's slot
        first.create_comment(7, "three")
        assert slept == [1.0, 2.0]
        second.list_comments(7)  # reads are not paced
        assert slept == [1.0, 2.0]
        clock.now += 10
        second.create_comment(7, "later")
        assert slept == [1.0, 2.0]  # the slot was long free
