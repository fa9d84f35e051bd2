"""The bot's wiring from the environment: the production `EventHandler` with a forge per
(repository, installation), the git token its clones use, and settings and registry read from a
checkout of the repository. `bot serve` and `bot work` (cli/bot.py) both build their handler here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mlops_bot.bot.checkout import (
    RepoCheckouts,
    TokenSource,
    git_auth_env,
    settings_from_directory,
    settings_from_text,
)
from mlops_bot.bot.handlers import Cooldowns, EventHandler, default_deploy_control
from mlops_bot.bot.registry_commands import RegistryLike
from mlops_bot.bot.routing import DeliveryContext, RepoSettings
from mlops_bot.errors import MlopsError
from mlops_bot.forge.auth import AppInstallationAuth, token_from_env
from mlops_bot.forge.base import Forge
from mlops_bot.forge.github import DEFAULT_API_URL
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.retry import RetryPolicy
from mlops_bot.forge.select import app_private_key
from mlops_bot.forge.shared_quota import SharedStore

# A job sleeps through a GitHub rate limit this long at most; a longer one defers the job (its
# worker takes other work meanwhile) until the limit lifts.
RATE_LIMIT_INLINE_SECONDS = 10.0


def forge_factory_from_env(environ: Mapping[str, str], shared: SharedStore | None = None
                           ) -> Callable[[str, int | None], Forge]:
    """One forge per (repository, installation) of the payload, cached: a multi-repo App install
    serves each repository with its own installation token. With `shared` (the queue database) the
    tokens and rate-limit budgets are those every replica shares."""
    cache: dict[tuple[str, int | None], Forge] = {}
    guard = threading.Lock()
    local = environ.get("MLOPS_BOT_LOCAL_FORGE")

    def make(repo: str, installation: int | None) -> Forge:
        if local:
            return LocalForge(local, repo=repo, actor="mlops-bot[bot]")
        from mlops_bot.forge.select import forge_from_env  # the forge engineer's selector

        env = dict(environ)
        env["GITHUB_REPOSITORY"] = repo
        if installation is not None:
            env["MLOPS_BOT_APP_INSTALLATION_ID"] = str(installation)
        return forge_from_env(env, shared=shared, retry=RetryPolicy(max_wait=RATE_LIMIT_INLINE_SECONDS)
                              if shared is not None else None)

    def forge_for(repo: str, installation: int | None) -> Forge:
        key = (repo, installation)
        with guard:
            if key not in cache:
                cache[key] = make(repo, installation)
            return cache[key]

    return forge_for


def git_token_source(environ: Mapping[str, str], clock: Callable[[], float] = time.time,
                     shared: SharedStore | None = None) -> TokenSource | None:
    """What the bot's git clones authenticate with: with GitHub App credentials the installation
    token of the payload's installation (one cached `AppInstallationAuth` per installation, which
    mints a new token before the hour is up; with `shared`, the very token the forges and the other
    replicas use); else `GITHUB_TOKEN`/`GH_TOKEN`; else nothing."""
    app_id = environ.get("MLOPS_BOT_APP_ID", "").strip()
    key = app_private_key(environ)
    if app_id and key:
        api_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
        sources: dict[tuple[str, str], AppInstallationAuth] = {}
        guard = threading.Lock()

        def app_token(repo: str, installation: int | None) -> str:
            # Without an installation id (a hand-made payload) the repository finds its installation.
            cache_key = ("installation", str(installation)) if installation is not None else ("repo", repo)
            with guard:
                source = sources.get(cache_key)
                if source is None:
                    source = sources[cache_key] = AppInstallationAuth(
                        app_id, key, api_url=api_url, repo=repo, installation_id=installation, clock=clock,
                        shared=shared)
            return source.token()

        return app_token
    static = token_from_env(environ)
    if static:
        return lambda _repo, _installation: static
    return None


def handler_from_env(environ: Mapping[str, str], state_dir: Path, repo_dir: Path | None = None,
                     clock: Callable[[], float] = time.time, cooldowns: Cooldowns | None = None,
                     shared: SharedStore | None = None) -> EventHandler:
    """The production handler: forge per repository, settings and registry from a git checkout
    (`repo_dir` when running inside the repository, e.g. in GitHub Actions; else a clone per
    repository under the state directory, from `MLOPS_BOT_GIT_URL_TEMPLATE`, fetched with the
    token of the payload's installation)."""
    make_forge = forge_factory_from_env(environ, shared)
    template = environ.get("MLOPS_BOT_GIT_URL_TEMPLATE")
    if not template and not environ.get("MLOPS_BOT_LOCAL_FORGE"):
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        template = server + "/{repo}.git"
    token_source = git_token_source(environ, clock, shared)
    checkouts = RepoCheckouts(state_dir / "repos", template, token=token_source) if template else None

    def directory(context: DeliveryContext) -> Path | None:
        if repo_dir is not None:
            return repo_dir
        return checkouts.sync(context.repo, context.installation) if checkouts is not None else None

    def settings_for(context: DeliveryContext) -> RepoSettings:
        if repo_dir is not None:
            return settings_from_directory(repo_dir)
        if checkouts is None:
            return RepoSettings()
        checkouts.sync(context.repo, context.installation)
        repo, installation = context.repo, context.installation
        return settings_from_text(checkouts.read_default_branch_file(repo, ".github/mlops.yml", installation),
                                  model_files=checkouts.read_default_branch_folder(repo, ".github/mlops",
                                                                                   installation))

    def registry_for(context: DeliveryContext, settings: RepoSettings) -> RegistryLike:
        path = directory(context)
        if path is None:
            raise MlopsError("the bot has no git checkout of the repository: set MLOPS_BOT_GIT_URL_TEMPLATE")
        from mlops_bot.registry.registry import Registry

        # Tag fetches and pushes carry the same per-installation token as the clone.
        def remote_env() -> dict[str, str]:
            return git_auth_env(token_source(context.repo, context.installation) if token_source else None)

        return Registry(path, forge=context.forge, remote="origin", policy=settings.registry,
                        remote_env=remote_env)

    return EventHandler(make_forge, settings_for, registry_for, default_deploy_control(), cooldowns=cooldowns,
                        clock=clock)
