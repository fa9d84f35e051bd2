"""The base branch's files, read from git objects (I/O edge): what decides a pull request's verdict
(its gates) and what it is compared with (`baseline.metrics_file`) come from the commit the PR
merges into, never from the PR's own checkout, which the PR controls.

Reads only blobs (`git cat-file`), bounded in size; nothing is checked out and nothing is run.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path, PurePosixPath

from mlops_bot.config import DEFAULT_CONFIG_PATH, MlopsConfig, load_models, models_dir
from mlops_bot.errors import DataError, MlopsError

MAX_FILE_BYTES = 4 * 1024 * 1024  # a config or a metrics file; anything larger is not one


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MlopsError(f"git {' '.join(args)} in {repo} failed: {exc}") from None


def commit_of(repo: Path, rev: str) -> str | None:
    """The commit `rev` names in `repo` (a sha, `origin/main`, ...), None when it names none."""
    if not rev or rev.startswith("-"):
        return None
    done = _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    return done.stdout.decode().strip() if done.returncode == 0 else None


def repo_path(path: str) -> str:
    """A repository-relative POSIX path for `REV:PATH` (no `./`, no `..`, not absolute)."""
    parts = [p for p in PurePosixPath(path.replace("\\", "/")).parts if p not in ("", ".")]
    if not parts or parts[0] == "/" or ".." in parts:
        raise DataError(f"{path!r} is not a path inside the repository")
    return "/".join(parts)


def file_at(repo: Path, commit: str, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
    """The bytes of `path` in `commit` (None when that commit has no such file)."""
    spec = f"{commit}:{repo_path(path)}"
    kind = _git(repo, "cat-file", "-t", spec)
    if kind.returncode != 0 or kind.stdout.strip() != b"blob":
        return None
    size = _git(repo, "cat-file", "-s", spec)
    if size.returncode != 0 or int(size.stdout.strip() or 0) > limit:
        raise DataError(f"{path} at {commit[:12]} is larger than {limit} bytes")
    done = _git(repo, "cat-file", "blob", spec)
    if done.returncode != 0:
        raise MlopsError(f"git could not read {spec}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def models_at(repo: Path, commit: str, path: str = DEFAULT_CONFIG_PATH) -> list[MlopsConfig] | None:
    """Every model of the mlops-bot config as committed in `commit` (the file at `path` and its
    per-model folder, `.github/mlops/*.yml`), paths anchored at `repo`; None when it has neither.
    Loaded like the files themselves: the bounded YAML loader, then the schema."""
    main = repo_path(path)
    folder = repo_path(str(models_dir(main)))
    listed = _git(repo, "ls-tree", "--name-only", f"{commit}:{folder}")
    names = [n for n in listed.stdout.decode().splitlines()
             if listed.returncode == 0 and n.endswith((".yml", ".yaml"))]
    files = {main: file_at(repo, commit, main)} | {
        f"{folder}/{name}": file_at(repo, commit, f"{folder}/{name}") for name in names}
    if not any(raw is not None for raw in files.values()):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        # The same layout under a folder named after the commit, so errors say where they come from.
        copy = Path(tmp) / f"{commit[:12]}"
        for name, raw in files.items():
            if raw is not None:
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                (copy / name).write_bytes(raw)
        return load_models(copy / main, root=repo)


def model_named(models: list[MlopsConfig] | None, name: str, by_name: bool = False) -> MlopsConfig | None:
    """The model of that name among `models` (None when there is none); one model on both sides and
    no name asked for: that model, even if the other side renamed it."""
    if not models:
        return None
    if len(models) == 1 and not by_name:
        return models[0]
    return next((config for config in models if config.model.name == name), None)


def metrics_file_at(repo: Path, commit: str, path: str, dest: Path) -> Path | None:
    """`baseline.metrics_file` as committed in `commit`, copied to `dest` (None when absent there)."""
    raw = file_at(repo, commit, path)
    if raw is None:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(raw)
    return dest
