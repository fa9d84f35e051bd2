"""The bot's git checkouts: one partial clone per repository in its state directory.

The registry lives in git tags and the config in `.github/mlops.yml` on the default branch, so the
bot keeps a `--filter=blob:none --no-checkout` clone per repository and fetches tags before each
command. Credentials never go on a command line or into `.git/config`: a token is passed to git
through `GIT_CONFIG_*` environment variables of the child process only (the same as `git -c
http.extraHeader=...`, without the header showing in `ps`), and is redacted from error messages.

With a GitHub App the token is the installation token of the payload's installation, asked for
on every clone/fetch (`TokenSource`), so an hour-old token is replaced before git sends it.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from mlops_bot import config_yaml, redaction
from mlops_bot.bot.routing import ModelSettings, RepoSettings
from mlops_bot.config import DEFAULT_CONFIG_PATH, ConfigDocument, models_dir, parse_models
from mlops_bot.errors import ForgeError, MlopsError

_SAFE_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_URL_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")

_FETCH_FAILURES = ("unable to access", "could not fetch", "Authentication failed", "could not read")

TokenSource = Callable[[str, "int | None"], "str | None"]
"""(repository, installation id of the payload) -> the token git should send, or None."""


def git_auth_env(token: str | None) -> dict[str, str]:
    """Environment that makes git send `token` as GitHub expects (basic auth, x-access-token)."""
    if not token:
        return {}
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraheader",
            "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}"}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` without these secrets (nor the known ones), their basic-auth encodings, or credentials
    inside URLs: `mlops_bot.redaction.redact`, the one home of the rule."""
    return redaction.redact(text, extra=[s for s in secrets if s])


class RepoCheckouts:
    """Clones under `root/<owner>/<name>`; `url_template` has `{repo}` (owner/name), `{owner}`, `{name}`.

    `env` is fixed extra environment for git; `token`, when given, is asked for a token before
    each clone or fetch (`sync(repo, installation)`), which git then sends as a header."""

    def __init__(self, root: str | Path, url_template: str, env: Mapping[str, str] | None = None,
                 token: TokenSource | None = None) -> None:
        parts = urllib.parse.urlsplit(url_template)
        if parts.username or parts.password:
            raise MlopsError(
                "MLOPS_BOT_GIT_URL_TEMPLATE must not hold credentials (git would store them in "
                ".git/config): the bot sends GITHUB_TOKEN or the App's installation token as a header"
            )
        self.root = Path(root)
        self.url_template = url_template
        self._env = dict(env or {})
        self._token = token
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, repo: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(repo, threading.Lock())

    def _git_env(self, token: str | None) -> dict[str, str]:
        extra = git_auth_env(token) if token else self._env
        return {**os.environ, **extra, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}

    def _git(self, *args: str, cwd: Path | None = None, check: bool = True, token: str | None = None
             ) -> subprocess.CompletedProcess[str]:
        env = self._git_env(token)
        result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                                errors="surrogateescape", timeout=300, check=False)  # bytes survive
        if check and result.returncode != 0:
            # git does not print the header, but a remote's message or a URL might carry a secret.
            detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
            secrets = [token or "", *(v.rsplit(" ", 1)[-1] for v in self._env.values())]
            raise ForgeError(redact(f"git {args[0]} failed for the bot's checkout: {detail}", secrets))
        return result

    def _git_show_bounded(self, spec: str, *, cwd: Path, token: str | None
                          ) -> subprocess.CompletedProcess[str]:
        """`git show SPEC` reading at most one byte more than a config may have (`MAX_BYTES`): the
        repository's file is the repository's to write, the size check comes after the read, and
        the text handed on still shows the size error (`config_yaml` names the file)."""
        proc = subprocess.Popen(["git", "show", spec], cwd=cwd, env=self._git_env(token),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = _read_bounded(proc, config_yaml.MAX_BYTES)
        code = 0 if len(out) > config_yaml.MAX_BYTES else proc.returncode
        return subprocess.CompletedProcess(["git", "show", spec], code,
                                           out.decode("utf-8", "surrogateescape"),
                                           err.decode("utf-8", "surrogateescape"))

    def path(self, repo: str) -> Path:
        if not _SAFE_REPO.match(repo) or ".." in repo:
            raise MlopsError(f"refusing unexpected repository name {repo!r}")
        return self.root / repo

    def sync(self, repo: str, installation: int | None = None) -> Path:
        """Clone on first use, else fetch branches and tags (moved tags too: `--force`), with the
        token of `installation` when a token source is configured."""
        target = self.path(repo)
        with self._lock(repo):
            token = self._token(repo, installation) if self._token is not None else None
            if not (target / ".git").exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                url = self.url_template.format(repo=repo, owner=repo.split("/")[0], name=repo.split("/")[1])
                self._git("clone", "--quiet", "--filter=blob:none", "--no-checkout", url, str(target),
                          token=token)
                self._git("config", "user.name", "mlops-bot", cwd=target)
                self._git("config", "user.email", "mlops-bot@users.noreply.github.com", cwd=target)
            else:
                self._git("fetch", "--quiet", "--prune", "--prune-tags", "--tags", "--force", "origin",
                          cwd=target, token=token)
                self._git("remote", "set-head", "origin", "--auto", cwd=target, check=False, token=token)
        return target

    def read_default_branch_folder(self, repo: str, folder: str, installation: int | None = None
                                   ) -> list[tuple[str, str]]:
        """(path, text) of the `.yml`/`.yaml` files directly in `folder` on the default branch, by name."""
        token = self._token(repo, installation) if self._token is not None else None
        listed = self._git("ls-tree", "--name-only", "origin/HEAD", f"{folder.rstrip('/')}/",
                           cwd=self.path(repo), check=False, token=token)
        if listed.returncode != 0:
            return []  # no default branch yet
        names = sorted(n for n in listed.stdout.splitlines() if n.endswith((".yml", ".yaml")))
        return [(name, text) for name in names
                if (text := self.read_default_branch_file(repo, name, installation)) is not None]

    def read_default_branch_file(self, repo: str, path: str, installation: int | None = None) -> str | None:
        """The file on the default branch, None when absent. The clone is partial, so git may fetch
        the blob here: that needs the token too (else a private repository reads as config-less)."""
        token = self._token(repo, installation) if self._token is not None else None
        result = self._git_show_bounded(f"origin/HEAD:{path}", cwd=self.path(repo), token=token)
        if result.returncode == 0:
            return result.stdout
        if not any(word in result.stderr for word in _FETCH_FAILURES):
            return None  # no such file, or no default branch yet
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        message = f"cannot read {path} of {repo} from the bot's checkout: {detail}"
        raise ForgeError(redact(message, [token or ""]))


def _read_bounded(proc: subprocess.Popen[bytes], limit: int, timeout: float = 300) -> tuple[bytes, bytes]:
    """(stdout, stderr) of `proc`, keeping at most `limit` + 1 bytes of stdout: past that, or past
    `timeout` seconds (a fetch of the blob that hangs), the process is killed, so a huge file never
    fills the bot's memory and a stuck remote never holds a worker."""
    assert proc.stdout is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read(limit + 1)
        if len(out) > limit:
            proc.kill()
        _, err = proc.communicate()
    finally:
        timer.cancel()
    return out, err or b""


def settings_from_text(text: str | bytes | None, source: str = DEFAULT_CONFIG_PATH,
                       model_files: Sequence[tuple[str, str | bytes]] = ()) -> RepoSettings:
    """The bot's view of a repository's config; defaults when the repository has none. `text` is
    `.github/mlops.yml`, `model_files` the (path, text) of the files under `.github/mlops/`. The text
    is the repository's to write: parsed with the bounded loader (size, UTF-8, depth, aliases)."""
    if text is None and not model_files:
        return RepoSettings()
    main = _document(text, source) if text is not None else None
    configs = parse_models(main, [_document(body, path) for path, body in model_files])
    first = configs[0]
    return RepoSettings(bot=first.bot, registry=first.registry, rollout=first.rollout, model=first.model.name,
                        models=tuple(ModelSettings(c.model.name, c.registry, c.rollout) for c in configs))


def _document(text: str | bytes, source: str) -> ConfigDocument:
    if isinstance(text, str):  # git output keeps undecodable bytes as surrogates: report them
        text = text.encode("utf-8", "surrogateescape")
    decoded = config_yaml.decode(text, source)
    return ConfigDocument(source, config_yaml.loads(decoded, source), decoded, source)


def settings_from_directory(directory: Path) -> RepoSettings:
    path = directory / DEFAULT_CONFIG_PATH
    folder = models_dir(path)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()) \
        if folder.is_dir() else []
    return settings_from_text(path.read_bytes() if path.exists() else None, str(path),
                              [(str(file), file.read_bytes()) for file in files])
