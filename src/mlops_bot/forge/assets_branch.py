"""Publish the report's images by commit to the assets branch of the same repository (git edge).

Runs in the comment job, in the base repository's checkout (trusted code, a token with
`contents: write`), never in a job that runs PR code. The commit is built with git plumbing in a
private index (`hash-object`, `update-index`, `write-tree`, `commit-tree`): the work tree and HEAD
of the checkout are never touched, and nothing but `pr-N/<head sha>/<image>` paths is ever written.
The push is a plain fast-forward; when another PR's comment job won the race, it is rebuilt on the
new tip and retried. Decisions (names, folders, pruning, URLs) live in `report/images.py`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlops_bot.errors import ForgeError, MlopsError
from mlops_bot.forge.base import Forge
from mlops_bot.registry.git import GitCommandError, git
from mlops_bot.report import escape
from mlops_bot.report.images import (
    ASSETS_BRANCH,
    KEEP_COMMITS_PER_PR,
    MAX_IMAGES,
    asset_folder,
    blob_url,
    folders_to_prune,
    image_content_ok,
    image_name_ok,
)

AUTHOR = ("mlops-bot", "mlops-bot@users.noreply.github.com")
ATTEMPTS = 4


@dataclass(frozen=True)
class PublishedImages:
    commit: str
    paths: dict[str, str]  # report-relative file (plots/x.png) -> path on the assets branch
    skipped: list[str]  # report files refused (name, size or content)


def collect_images(report_dir: Path, subdir: str = "plots") -> tuple[dict[str, bytes], list[str]]:
    """The images of a report folder (an untrusted artifact): plain names, real PNG/SVG, bounded."""
    found: dict[str, bytes] = {}
    skipped: list[str] = []
    folder = report_dir / subdir
    if not folder.is_dir():
        return found, skipped
    for path in sorted(folder.iterdir()):
        rel = f"{subdir}/{path.name}"
        if path.is_symlink() or not path.is_file() or not image_name_ok(path.name):
            if path.suffix in (".png", ".svg"):
                skipped.append(rel)
            continue
        data = path.read_bytes()
        if not image_content_ok(path.name, data) or len(found) >= MAX_IMAGES:
            skipped.append(rel)
            continue
        found[rel] = data
    return found, skipped


def _folders(repo: Path, tip: str) -> list[str]:
    """`pr-N/<sha>` folders on the branch, oldest first (by the commit that added them)."""
    present = [f for f in git(repo, "ls-tree", "-d", "--name-only", "-r", tip).split() if f.count("/") == 1]
    added: dict[str, None] = {}
    out = git(repo, "log", "--reverse", "--format=", "--name-only", "--diff-filter=A", tip)
    for line in out.splitlines():
        folder = "/".join(line.split("/")[:2])
        if folder in present:
            added.setdefault(folder, None)
    # folders older than the fetched history come first
    return [f for f in present if f not in added] + list(added)


def _commit(
    repo: Path,
    parent: str | None,
    folder: str,
    files: Mapping[str, bytes],
    prune: Sequence[str],
    message: str,
    env: Mapping[str, str],
) -> str:
    with tempfile.TemporaryDirectory(prefix="mlops-assets-") as tmp:
        index_env = {**env, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        if parent:
            git(repo, "read-tree", parent, env=index_env)
            for old in [*prune, folder]:
                git(repo, "rm", "--cached", "-r", "-q", "--ignore-unmatch", "--", old, env=index_env)
        for rel, data in files.items():
            blob_path = Path(tmp) / "blob"
            blob_path.write_bytes(data)
            blob = git(repo, "hash-object", "-w", "--", str(blob_path), env=index_env).strip()
            name = rel.rsplit("/", 1)[-1]
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{folder}/{name}", env=index_env)
        tree = git(repo, "write-tree", env=index_env).strip()
        identity = {
            "GIT_AUTHOR_NAME": AUTHOR[0],
            "GIT_AUTHOR_EMAIL": AUTHOR[1],
            "GIT_COMMITTER_NAME": AUTHOR[0],
            "GIT_COMMITTER_EMAIL": AUTHOR[1],
        }
        args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
        return git(repo, *args, env={**env, **identity}).strip()


def _fetch_tip(repo: Path, remote: str, branch: str, env: Mapping[str, str]) -> str | None:
    listed = git(repo, "ls-remote", "--heads", remote, f"refs/heads/{branch}", env=env).split()
    if not listed:
        return None
    git(repo, "fetch", "-q", "--no-tags", remote, f"refs/heads/{branch}", env=env)
    return git(repo, "rev-parse", "FETCH_HEAD", env=env).strip()


def publish_images(
    repo: Path,
    report_dir: Path,
    pr: int,
    head_sha: str,
    *,
    remote: str = "origin",
    branch: str = ASSETS_BRANCH,
    open_prs: Sequence[int] | None = None,
    keep: int = KEEP_COMMITS_PER_PR,
    env: Mapping[str, str] | None = None,
) -> PublishedImages | None:
    """Commit the report's images to `branch` under `pr-N/<head sha>/` and push; None when the
    report has no images. Raises ForgeError when the push keeps failing."""
    files, skipped = collect_images(report_dir)
    if not files:
        return None
    folder = asset_folder(pr, head_sha)
    env = dict(env or {})
    message = f"mlops-bot: report images of PR #{pr} at {head_sha[:12]}"
    last: Exception | None = None
    for _ in range(ATTEMPTS):
        try:
            tip = _fetch_tip(repo, remote, branch, env)
            prune = folders_to_prune(_folders(repo, tip), pr, keep, open_prs, folder) if tip else []
            commit = _commit(repo, tip, folder, files, prune, message, env)
            git(repo, "push", "-q", remote, f"{commit}:refs/heads/{branch}", env=env)
        except GitCommandError as error:
            last = error
            if (
                "rejected" in error.stderr
                or "fetch first" in error.stderr
                or "non-fast-forward" in error.stderr
            ):
                continue  # another comment job pushed first: rebuild on its commit
            break
        except MlopsError as error:
            last = error
            break
        paths = {rel: f"{folder}/{rel.rsplit('/', 1)[-1]}" for rel in files}
        return PublishedImages(commit=commit, paths=paths, skipped=skipped)
    raise ForgeError(f"could not push the report images to {remote} {branch}: {last}")


def branch_images_step(
    forge: Forge,
    repo: Path,
    report_dir: Path,
    pr: int,
    *,
    server: str,
    repository: str,
    remote: str = "origin",
    branch: str = ASSETS_BRANCH,
    keep: int = KEEP_COMMITS_PER_PR,
    warn: Callable[[str], None] = lambda text: None,
) -> Callable[[str], tuple[dict[str, str] | None, str]]:
    """The `images` step of `publish_report` for `report.images: branch`: push, then the URLs.
    A failed push is reported through `warn` and leaves the plot list in the comment."""

    def step(head_sha: str) -> tuple[dict[str, str] | None, str]:
        open_prs = [p.number for p in forge.list_pull_requests("open")]
        try:
            published = publish_images(
                repo, report_dir, pr, head_sha, remote=remote, branch=branch, open_prs=open_prs, keep=keep
            )
        except MlopsError as error:
            # The verdict must still reach the PR: keep the plot list, say why there are no images.
            warn(f"report images not published ({error}); the comment names the plot files instead")
            return None, ""
        if published is None:
            return {}, ""
        urls = {
            rel: blob_url(server, repository, published.commit, path) for rel, path in published.paths.items()
        }
        note = ""
        if published.skipped:
            names = ", ".join(escape.code(name) for name in published.skipped)  # names from the artifact
            note = f"Not shown (not a plain PNG/SVG under 1 MiB): {names}"
        return urls, note

    return step
