"""GitHub App auth (JWT claims, installation tokens cached and refreshed before expiry, with an
injected clock) and forge selection from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from github_emulator import Emulator
from github_emulator.app_keys import app_key_pair
from mlops_bot.errors import ForgeError
from mlops_bot.forge.auth import AppInstallationAuth, app_jwt, token_from_env
from mlops_bot.forge.github import GitHubForge
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.select import forge_from_env

REPO = "octo-org/churn"
APP_ID = 4242


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture()
def clock() -> Clock:
    return Clock(1_750_000_000.0)


@pytest.fixture()
def gh(keys: tuple[str, str], clock: Clock) -> Iterator[Emulator]:
    with Emulator(clock=clock, app_id=APP_ID, app_public_key=keys[1]) as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, 3)
        emu.add_installation(77, [REPO])
        yield emu


def test_jwt_claims_are_what_github_requires(keys: tuple[str, str]) -> None:
    now = 1_750_000_000
    token = app_jwt(APP_ID, keys[0], now)
    claims = jwt.decode(token, keys[1], algorithms=["RS256"], options={"verify_exp": False})
    assert claims["iss"] == str(APP_ID)
    assert claims["iat"] == now - 60  # backdated against clock drift
    assert claims["exp"] - claims["iat"] <= 600 and claims["exp"] <= now + 600
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    with pytest.raises(ForgeError, match="private key"):
        app_jwt(APP_ID, "not a key", now)


def test_installation_token_is_cached_and_refreshed_before_expiry(gh: Emulator, keys: tuple[str, str],
                                                                   clock: Clock) -> None:
    source = AppInstallationAuth(APP_ID, keys[0], api_url=gh.url, repo=REPO, clock=clock)
    first = source.token()
    assert first.startswith("ghs_") and source.installation_id == 77
    clock.now += 3000  # 50 minutes: still more than the 5-minute margin left
    assert source.token() == first and source.fetches == 1
    clock.now += 400  # 56m40s: inside the margin, refreshed before GitHub would reject it
    second = source.token()
    assert second != first and source.fetches == 2
    assert gh.state["installation_tokens"][second]["expires_at_epoch"] == clock.now + 3600


def test_forge_as_app_uses_installation_token_and_survives_expiry(gh: Emulator, keys: tuple[str, str],
                                                                  clock: Clock) -> None:
    from mlops_bot.forge.auth import InstallationTokenAuth

    source = AppInstallationAuth(APP_ID, keys[0], api_url=gh.url, installation_id=77, clock=clock)
    forge = GitHubForge(REPO, InstallationTokenAuth(source), api_url=gh.url)
    forge.create_comment(3, "as the app")
    clock.now += 3700  # the old token has expired at the emulator; a new one is minted first
    forge.create_comment(3, "an hour later")
    authors = {c["user"]["login"] for c in gh.state["comments"]}
    assert authors == {"mlops-bot[bot]"}
    tokens = [r["token"] for r in gh.requests if r["path"].endswith("/issues/3/comments")]
    assert len(set(tokens)) == 2 and all(t.startswith("ghs_") for t in tokens)
    assert all(r["status"] == 201 for r in gh.requests if r["path"].endswith("/issues/3/comments"))


def test_bad_app_credentials_give_a_clear_error(gh: Emulator, clock: Clock) -> None:
    other = app_key_pair()[0]  # not the key the emulator's App holds
    source = AppInstallationAuth(APP_ID, other, api_url=gh.url, installation_id=77, clock=clock)
    with pytest.raises(ForgeError, match=r"401.*App id and private key"):
        source.token()


def test_forge_from_env(tmp_path: Path, gh: Emulator, keys: tuple[str, str]) -> None:
    assert token_from_env({"GH_TOKEN": "b"}) == "b"
    assert token_from_env({"GITHUB_TOKEN": "a", "GH_TOKEN": "b"}) == "a"
    assert token_from_env({"GITHUB_TOKEN": "  "}) is None
    local = forge_from_env({"MLOPS_BOT_LOCAL_FORGE": str(tmp_path), "GITHUB_REPOSITORY": "me/x"})
    assert isinstance(local, LocalForge) and local.repo == "me/x"
    forge = forge_from_env({"GITHUB_TOKEN": "ghp_x", "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": gh.url})
    assert isinstance(forge, GitHubForge)
    forge.create_comment(3, "hi")
    assert gh.requests[-1]["token"] == "ghp_x"
    key_file = tmp_path / "app.pem"
    key_file.write_text(keys[0])
    app = forge_from_env({"MLOPS_BOT_APP_ID": str(APP_ID), "MLOPS_BOT_APP_PRIVATE_KEY_FILE": str(key_file),
                          "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": gh.url})
    assert isinstance(app, GitHubForge)
    with pytest.raises(ForgeError, match="GITHUB_REPOSITORY"):
        forge_from_env({"GITHUB_TOKEN": "x"})
    with pytest.raises(ForgeError, match="no GitHub credentials"):
        forge_from_env({"GITHUB_REPOSITORY": REPO})
    with pytest.raises(ForgeError, match="needs both"):
        forge_from_env({"GITHUB_REPOSITORY": REPO, "MLOPS_BOT_APP_ID": "1"})
