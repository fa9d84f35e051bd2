"""The bot's git checkouts: one partial clone per repository in its state directory.

The registry lives in git tags and the config in `.github/mlops.yml` on the default branch, so the
bot keeps a `--filter=blob:none --no-checkout` clone per repository and fetches tags before each
command. Credentials never go on a command line or into `.git/config`: a token is passed to git
through `GIT_CONFIG_*` environment variables of the child process only.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import yaml

from mlops_bot.bot.handlers import RepoSettings
from mlops_bot.config import DEFAULT_CONFIG_PATH, parse_config
from mlops_bot.errors import ForgeError, MlopsError

_SAFE_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def git_auth_env(token: str | None) -> dict[str, str]:
    """Environment that makes git send `token` as GitHub expects (basic auth, x-access-token)."""
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"}


class RepoCheckouts:
    """Clones under `root/<owner>/<name>`; `url_template` has `{repo}` (owner/name), `{owner}`, `{name}`."""

    def __init__(self, root: str | Path, url_template: str, env: Mapping[str, str] | None = None) -> None:
        self.root = Path(root)
        self.url_template = url_template
        self._env = dict(env or {})
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, repo: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(repo, threading.Lock())

    def _git(self, *args: str, cwd: Path | None = None, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self._env, "GIT_TERMINAL_PROMPT": "0"}
        result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                                timeout=300, check=False)
        if check and result.returncode != 0:
            # stderr of git never contains the header value; keep the first line only.
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise ForgeError(f"git {args[0]} failed for the bot's checkout: {detail}")
        return result

    def path(self, repo: str) -> Path:
        if not _SAFE_REPO.match(repo) or ".." in repo:
            raise MlopsError(f"refusing unexpected repository name {repo!r}")
        return self.root / repo

    def sync(self, repo: str) -> Path:
        """Clone on first use, else fetch branches and tags (moved tags too: `--force`)."""
        target = self.path(repo)
        with self._lock(repo):
            if not (target / ".git").exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                url = self.url_template.format(repo=repo, owner=repo.split("/")[0], name=repo.split("/")[1])
                self._git("clone", "--quiet", "--filter=blob:none", "--no-checkout", url, str(target))
                self._git("config", "user.name", "mlops-bot", cwd=target)
                self._git("config", "user.email", "mlops-bot@users.noreply.github.com", cwd=target)
            else:
                self._git("fetch", "--quiet", "--prune", "--prune-tags", "--tags", "--force", "origin",
                          cwd=target)
                self._git("remote", "set-head", "origin", "--auto", cwd=target, check=False)
        return target

    def read_default_branch_file(self, repo: str, path: str) -> str | None:
        result = self._git("show", f"origin/HEAD:{path}", cwd=self.path(repo), check=False)
        return result.stdout if result.returncode == 0 else None


def settings_from_text(text: str | None, source: str = DEFAULT_CONFIG_PATH) -> RepoSettings:
    """The bot's view of a repository's config; defaults when the repository has none."""
    if text is None:
        return RepoSettings()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MlopsError(f"{source}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    config = parse_config(data, source, text)
    return RepoSettings(bot=config.bot, registry=config.registry, rollout=config.rollout,
                        model=config.model.name)


def settings_from_directory(directory: Path) -> RepoSettings:
    path = directory / DEFAULT_CONFIG_PATH
    return settings_from_text(path.read_text(encoding="utf-8") if path.exists() else None, str(path))
