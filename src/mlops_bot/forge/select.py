"""Which forge to use, decided from the environment (the same code runs in Actions, in the bot and
in the offline demo).

- `MLOPS_BOT_LOCAL_FORGE=<dir>`: the file-backed local forge (repo from `GITHUB_REPOSITORY` or
  `local/example`).
- `MLOPS_BOT_APP_ID` + `MLOPS_BOT_APP_PRIVATE_KEY` (PEM text) or `MLOPS_BOT_APP_PRIVATE_KEY_FILE`
  [+ `MLOPS_BOT_APP_INSTALLATION_ID`]: GitHub as the App's installation on `GITHUB_REPOSITORY`.
- `GITHUB_TOKEN` or `GH_TOKEN`: GitHub with that token.
- `MLOPS_BOT_LOGIN` (optional): the login our comments are written as (e.g. `my-app[bot]`); sticky
  comments are only ever updated when written by it (by default: by a bot account, never a person).
GitHub's API is `GITHUB_API_URL` (set by Actions; on GHES `https://HOST/api/v3`), default api.github.com.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_bot.errors import ForgeError, MlopsError
from mlops_bot.forge.base import Forge
from mlops_bot.forge.local import LocalForge

if TYPE_CHECKING:
    from mlops_bot.forge.retry import RetryPolicy
    from mlops_bot.forge.shared_quota import SharedStore


def app_private_key(environ: Mapping[str, str]) -> str | None:
    text = environ.get("MLOPS_BOT_APP_PRIVATE_KEY", "").strip()
    if text:
        return text.replace("\\n", "\n")  # keys pasted into one-line env files
    path = environ.get("MLOPS_BOT_APP_PRIVATE_KEY_FILE", "").strip()
    if path:
        try:
            return Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise ForgeError(
                f"MLOPS_BOT_APP_PRIVATE_KEY_FILE={path}: cannot read the key ({error})"
            ) from error
    return None


def forge_from_env(environ: Mapping[str, str] = os.environ, *, shared: SharedStore | None = None,
                   retry: RetryPolicy | None = None) -> Forge:
    """`shared` (the bot's database): the installation token and the rate-limit budget are shared
    with every other process and replica using the same store. The GitHub client (PyGithub, JWT,
    the token seal) is imported only when GitHub is chosen: the local forge never loads it."""
    local = environ.get("MLOPS_BOT_LOCAL_FORGE", "").strip()
    repo = environ.get("GITHUB_REPOSITORY", "").strip()
    if local:
        return LocalForge(
            local, repo=repo or "local/example", actor=environ.get("GITHUB_ACTOR", "").strip() or "local-user"
        )
    if not repo:
        raise ForgeError(
            "GITHUB_REPOSITORY is not set: set it to 'owner/name' (Actions sets it for you), "
            "or MLOPS_BOT_LOCAL_FORGE=<dir> to work offline"
        )
    return _github_forge(environ, repo, shared=shared, retry=retry)


def _missing_package(error: ModuleNotFoundError) -> MlopsError | None:
    """A package the GitHub forge imports is not installed: the extra that provides it when it is
    one (pyproject.toml says, through `extras.missing_extra`), else the core install is broken.
    None for a module of our own (a bug, not an install to fix)."""
    top = (error.name or "").split(".")[0]
    if not top or top == "mlops_bot":
        return None
    from mlops_bot.extras import missing_extra

    return missing_extra(error) or ForgeError(
        f"the GitHub forge needs the Python package {top!r}, which the core install of mlops-bot "
        "provides but is missing here: reinstall it (pip install --force-reinstall mlops-bot), "
        "or set MLOPS_BOT_LOCAL_FORGE=<dir> to work offline"
    )


def _github_forge(environ: Mapping[str, str], repo: str, *, shared: SharedStore | None,
                  retry: RetryPolicy | None) -> Forge:
    try:
        from github import Auth

        from mlops_bot.forge.auth import AppInstallationAuth, InstallationTokenAuth, token_from_env
        from mlops_bot.forge.github import DEFAULT_API_URL, GitHubForge
        from mlops_bot.forge.retry import RetryPolicy
        from mlops_bot.forge.shared_quota import RateLimitGate, limits_key, static_token_id
    except ModuleNotFoundError as error:
        missing = _missing_package(error)
        if missing is None:
            raise
        raise missing from error

    api_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
    # Whose sticky comments we update: this login when set, else any bot account's, never a person's.
    own_login = environ.get("MLOPS_BOT_LOGIN", "").strip() or None
    app_id = environ.get("MLOPS_BOT_APP_ID", "").strip()
    key = app_private_key(environ)
    if app_id and key:
        installation = environ.get("MLOPS_BOT_APP_INSTALLATION_ID", "").strip()
        source = AppInstallationAuth(
            app_id,
            key,
            api_url=api_url,
            repo=repo,
            installation_id=int(installation) if installation else None,
            shared=shared,
        )
        gate = None if shared is None else RateLimitGate(
            shared, lambda: limits_key(api_url, f"installation:{source.find_installation()}"),
            inline_wait=(retry or RetryPolicy()).max_wait)
        return GitHubForge(repo, InstallationTokenAuth(source), api_url=api_url, own_login=own_login,
                           retry=retry, limits=gate)
    if app_id or key:
        raise ForgeError(
            "GitHub App auth needs both MLOPS_BOT_APP_ID and MLOPS_BOT_APP_PRIVATE_KEY "
            "(or MLOPS_BOT_APP_PRIVATE_KEY_FILE)"
        )
    token = token_from_env(environ)
    if token:
        gate = None if shared is None else RateLimitGate(
            shared, limits_key(api_url, static_token_id(token)),
            inline_wait=(retry or RetryPolicy()).max_wait)
        return GitHubForge(repo, Auth.Token(token), api_url=api_url, own_login=own_login, retry=retry,
                           limits=gate)
    raise ForgeError(
        "no GitHub credentials: set GITHUB_TOKEN (in a workflow: `env: GITHUB_TOKEN: "
        "${{ github.token }}`), or MLOPS_BOT_APP_ID and MLOPS_BOT_APP_PRIVATE_KEY for the App, "
        "or MLOPS_BOT_LOCAL_FORGE=<dir> to work offline"
    )
