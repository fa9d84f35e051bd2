"""The bot's clones of private repositories with GitHub App credentials only: git sends the
installation token of the payload's installation (minted by the GitHub API emulator, checked by a
real git smart-HTTP remote), the token never lands in .git/config, on disk or in logs, it is
refreshed when the hour is up (injected clock), and errors do not echo it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from bot_git_http import GitHttpRemote
from bot_testkit import REPO, World, git

from github_emulator import Emulator
from mlops_bot.bot.checkout import RepoCheckouts, redact
from mlops_bot.bot.routing import DeliveryContext
from mlops_bot.bot.wiring import handler_from_env
from mlops_bot.errors import ForgeError, MlopsError

APP_ID = 5151
OTHER = "acme/fraud"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _second_repository(world: World) -> None:
    bare = world.tmp / "remotes" / f"{OTHER}.git"
    git(world.tmp, "init", "--quiet", "--bare", "-b", "main", str(bare))
    seed = world.tmp / "fraud"
    git(world.tmp, "init", "--quiet", "-b", "main", str(seed))
    (seed / "README.md").write_text("fraud model\n")
    git(seed, "add", "README.md")
    git(seed, "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "--quiet", "-m", "start")
    git(seed, "push", "--quiet", str(bare), "main")


def _tokens_by_installation(gh: Emulator) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for token, row in gh.public_state()["installation_tokens"].items():
        out.setdefault(int(row["installation_id"]), []).append(token)
    return out


def _files_containing(root: Path, needles: list[str]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if any(needle.encode() in data for needle in needles):
                hits.append(str(path.relative_to(root)))
    return hits


def test_private_clone_with_installation_token_per_installation_and_refresh(
    world: World,
    app_keys: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    _second_repository(world)
    clock = Clock()
    private, public = app_keys
    with (
        Emulator(clock=clock, app_id=APP_ID, app_public_key=public) as gh,
        GitHttpRemote(world.tmp / "remotes", gh) as remote,
    ):
        for installation, repo in ((100, REPO), (101, OTHER)):
            gh.add_repo(repo)
            gh.add_installation(installation, [repo])
        env = {
            "MLOPS_BOT_APP_ID": str(APP_ID),
            "MLOPS_BOT_APP_PRIVATE_KEY": private,
            "GITHUB_API_URL": gh.url,
            "MLOPS_BOT_GIT_URL_TEMPLATE": remote.url + "/{repo}.git",
        }
        state = world.tmp / "state-app"
        handler = handler_from_env(env, state, clock=clock)

        # the config comes from the private clone (a partial clone: the blob is fetched lazily,
        # with the token too); the second repository has no config
        settings = handler.settings_for(DeliveryContext(REPO, 100, handler.forge_for(REPO, 100)))
        assert settings.model == "churn" and settings.registry.stages == ["staging", "production"]
        assert handler.settings_for(DeliveryContext(OTHER, 101, handler.forge_for(OTHER, 101))).model is None
        handler.settings_for(DeliveryContext(REPO, 100, handler.forge_for(REPO, 100)))  # a fetch

        minted = _tokens_by_installation(gh)
        assert {k: len(v) for k, v in minted.items()} == {100: 1, 101: 1}
        assert remote.requests and all(r["allowed"] for r in remote.requests), remote.requests
        for row in remote.requests:  # each repository was fetched with its own installation's token
            assert row["token"] == minted[100 if row["repo"] == REPO else 101][0], row
        assert {r["repo"] for r in remote.requests} == {REPO, OTHER}

        # an hour later the first token is dead on the remote; the bot mints a new one first
        clock.now += 3600
        first = minted[100][0]
        seen = len(remote.requests)
        assert handler.settings_for(DeliveryContext(REPO, 100, handler.forge_for(REPO, 100))).model == "churn"
        minted = _tokens_by_installation(gh)
        assert len(minted[100]) == 2
        fresh = next(t for t in minted[100] if t != first)
        later = remote.requests[seen:]
        assert later and all(r["token"] == fresh and r["allowed"] for r in later), later

        secrets = [token for tokens in minted.values() for token in tokens]
        for repo in (REPO, OTHER):
            config = (state / "repos" / repo / ".git" / "config").read_text()
            assert "extraheader" not in config.lower() and "x-access-token" not in config
            assert remote.url + f"/{repo}.git" in config  # the plain URL, no userinfo
            # a partial clone (the remote allows filters, as github.com does): reading the config
            # above fetched its blob lazily, which only works because that fetch sent the token too
            assert "promisor = true" in config
        assert _files_containing(state, secrets) == []
    captured = capfd.readouterr()
    for secret in secrets:
        assert secret not in caplog.text and secret not in captured.out and secret not in captured.err


def test_without_app_credentials_a_private_repository_does_not_clone(
    world: World, app_keys: tuple[str, str]
) -> None:
    """The gap this wiring closes: a GITHUB_TOKEN the remote does not accept, or none, fails with
    a clear error that does not echo the token."""
    clock = Clock()
    with (
        Emulator(clock=clock, app_id=APP_ID, app_public_key=app_keys[1]) as gh,
        GitHttpRemote(world.tmp / "remotes", gh) as remote,
    ):
        gh.add_repo(REPO)
        gh.add_installation(100, [REPO])
        template = remote.url + "/{repo}.git"
        wrong = "ghp_" + "x" * 36
        for env in ({}, {"GITHUB_TOKEN": wrong}):
            state = world.tmp / f"state-{len(env)}"
            handler = handler_from_env({"MLOPS_BOT_GIT_URL_TEMPLATE": template, **env}, state)
            with pytest.raises(ForgeError, match="git clone failed") as caught:
                handler.settings_for(DeliveryContext(REPO, None, object()))  # type: ignore[arg-type]
            assert wrong not in str(caught.value)
        assert remote.requests and not any(r["allowed"] for r in remote.requests)
        sent = {r["token"] for r in remote.requests}
        assert sent == {None, wrong}  # the static token was sent, as a header


def test_redaction_and_credentials_in_the_url_template(tmp_path: Path) -> None:
    token = "ghs_" + "a1" * 18
    import base64

    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    text = f"fatal: https://x-access-token:{token}@github.com/acme/churn.git: {basic} bad {token}"
    cleaned = redact(text, [token])
    assert token not in cleaned and basic not in cleaned
    assert "https://***@github.com/acme/churn.git" in cleaned
    assert redact("https://user@host/x and ssh://git@host/y", []) == "https://***@host/x and ssh://***@host/y"
    with pytest.raises(MlopsError, match="must not hold credentials"):
        RepoCheckouts(tmp_path, "https://x-access-token:" + token + "@github.com/{repo}.git")


def test_registry_tags_are_fetched_and_pushed_with_the_installation_token(
    world: World, app_keys: tuple[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    """/promote writes registry tags from the bot's checkout: the fetch and the atomic push to a
    private remote must carry the installation token too, and leave it nowhere on disk."""
    clock = Clock()
    private, public = app_keys
    with (
        Emulator(clock=clock, app_id=APP_ID, app_public_key=public) as gh,
        GitHttpRemote(world.tmp / "remotes", gh) as remote,
    ):
        gh.add_repo(REPO)
        gh.add_installation(100, [REPO])
        env = {
            "MLOPS_BOT_APP_ID": str(APP_ID),
            "MLOPS_BOT_APP_PRIVATE_KEY": private,
            "GITHUB_API_URL": gh.url,
            "MLOPS_BOT_GIT_URL_TEMPLATE": remote.url + "/{repo}.git",
        }
        state = world.tmp / "state-registry"
        handler = handler_from_env(env, state, clock=clock)
        context = DeliveryContext(REPO, 100, handler.forge_for(REPO, 100))
        settings = handler.settings_for(context)
        registry = handler.registry_for(context, settings)
        seen = len(remote.requests)
        event = registry.assign("churn", "staging", version="v1.1.0", push=True, actor="alice")
        pushes = [r for r in remote.requests[seen:] if "receive-pack" in r["path"]]
        assert pushes and all(r["allowed"] and r["token"] for r in pushes), remote.requests[seen:]
        bare = world.tmp / "remotes" / f"{REPO}.git"
        assert event.tag in git(bare, "tag", "--list").split()
        secrets = [t for tokens in _tokens_by_installation(gh).values() for t in tokens]
        assert _files_containing(state, secrets) == []
    captured = capfd.readouterr()
    assert all(s not in captured.out + captured.err for s in secrets)
