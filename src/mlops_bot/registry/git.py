"""The git edge of the registry: read all registry tags with one `git for-each-ref`, write annotated
tags, and move them to and from a remote atomically.

One process per read, never one per tag: that is what keeps `show` fast on registries with
thousands of tags (GTO opens every tag object separately).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mlops_bot.errors import RegistryError
from mlops_bot.locked_files import file_lock

_FIELDS = (
    "%(refname)",
    "%(objecttype)",
    "%(objectname)",
    "%(*objecttype)",
    "%(*objectname)",
    "%(taggername)",
    "%(taggeremail)",
    "%(taggerdate:raw)",
    "%(*authorname)",
    "%(*authoremail)",
    "%(*committername)",
    "%(*committeremail)",
    "%(*committerdate:raw)",
    "%(*contents)",
    "%(contents)",
)
FOR_EACH_REF_FORMAT = "%00".join(_FIELDS) + "%00"


class TagRecord:
    """One annotated tag as git stores it, plus the commit it points to (for GTO's commit events).

    A plain slotted class rather than a dataclass: `registry show` builds thousands of these, and
    importing `dataclasses` (and `inspect` behind it) is a noticeable share of a quick command.
    """

    __slots__ = (
        "commit_author_email",
        "commit_author_name",
        "commit_message",
        "committed_at",
        "committer_email",
        "committer_name",
        "message",
        "tag",
        "tag_time",
        "tagged_at",
        "tagger_email",
        "tagger_name",
        "target",
    )

    def __init__(self, tag: str, target: str, tagger_name: str, tagger_email: str, tagged_at: datetime,
                 message: str, commit_author_name: str, commit_author_email: str, committer_name: str,
                 committer_email: str, committed_at: datetime, commit_message: str) -> None:
        self.tag = tag
        self.target = target
        self.tagger_name = tagger_name
        self.tagger_email = tagger_email
        self.tagged_at = tagged_at
        self.message = message
        self.commit_author_name = commit_author_name
        self.commit_author_email = commit_author_email
        self.committer_name = committer_name
        self.committer_email = committer_email
        self.committed_at = committed_at
        self.commit_message = commit_message
        self.tag_time = int(tagged_at.timestamp())

    def __repr__(self) -> str:
        return f"TagRecord({self.tag!r} -> {self.target[:12]})"


class GitCommandError(RegistryError):
    """A git command failed; carries stderr so callers can tell a lost race from other failures."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {stderr.strip()}")


def git(repo: Path, *args: str, input_text: str | None = None, env: Mapping[str, str] | None = None
        ) -> str:
    full_env = dict(os.environ)
    full_env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args], input=input_text, capture_output=True, text=True,
            env=full_env, check=False,
        )
    except FileNotFoundError:
        raise RegistryError("git is not installed or not on PATH") from None
    if proc.returncode != 0:
        raise GitCommandError(args, proc.returncode, proc.stderr)
    return proc.stdout


def _email(value: str) -> str:
    return value[1:-1] if value.startswith("<") and value.endswith(">") else value


_ZONES: dict[str, timezone] = {}


def _zone(offset: str) -> timezone:
    zone = _ZONES.get(offset)
    if zone is None:
        sign = -1 if offset.startswith("-") else 1
        digits = offset.lstrip("+-") or "0000"
        zone = _ZONES[offset] = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4])))
    return zone


def _raw_date(value: str) -> datetime:
    """'1700000000 +0130' -> aware datetime in that offset (what GTO's scmrepo returns)."""
    seconds, _, offset = value.strip().partition(" ")
    return datetime.fromtimestamp(int(seconds), tz=_zone(offset))


def check_repo(repo: Path) -> Path:
    repo = Path(repo)
    try:
        git(repo, "rev-parse", "--git-dir")
    except GitCommandError:
        raise RegistryError(f"{repo} is not a git repository (pass --repo PATH)") from None
    return repo


def read_tags(repo: Path, patterns: Sequence[str] = ("refs/tags",)) -> list[TagRecord]:
    """All annotated tags under `patterns`, sorted by name; lightweight tags are skipped.

    One process for the whole registry. A repository that is not a git repository gets the
    friendly error of `check_repo`, checked only on failure so the common path spawns one process.
    """
    try:
        out = git(repo, "for-each-ref", f"--format={FOR_EACH_REF_FORMAT}", *patterns)
    except GitCommandError:
        check_repo(repo)
        raise
    parts = out.split("\0")
    width = len(_FIELDS)
    dates: dict[str, datetime] = {}  # many tags share a commit, hence a commit date

    def date(raw: str) -> datetime:
        found = dates.get(raw)
        if found is None:
            found = dates[raw] = _raw_date(raw)
        return found

    records = []
    for start in range(0, len(parts) - width + 1, width):
        (refname, objtype, _tag_sha, target_type, target, tagger, tagger_email, tagger_date,
         author, author_email, committer, committer_email, commit_date, commit_message, message
         ) = parts[start:start + width]
        if objtype != "tag" or target_type != "commit" or not tagger_date:
            continue  # lightweight tags, and tags of trees/blobs/tags, are not registry events
        records.append(TagRecord(
            refname.lstrip("\n").removeprefix("refs/tags/"), target, tagger, _email(tagger_email),
            date(tagger_date), message, author, _email(author_email), committer, _email(committer_email),
            date(commit_date), commit_message,
        ))
    records.sort(key=lambda r: r.tag)
    return records


def tag_names(repo: Path, patterns: Sequence[str] = ("refs/tags",)) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:strip=2)", *patterns)
    return out.split()


def resolve_commit(repo: Path, rev: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except GitCommandError:
        raise RegistryError(f"revision {rev!r} does not name a commit in {repo}") from None


class TagExists(RegistryError):
    """Another writer in this clone created the same tag first: re-plan, like a rejected push."""


def create_tag(repo: Path, name: str, target: str, message: str, *, tagger_name: str | None = None,
               tagger_email: str | None = None, date: str | None = None) -> None:
    """Create an annotated tag; fails (never overwrites) when it exists."""
    env: dict[str, str] = {}
    if tagger_name:
        env["GIT_COMMITTER_NAME"] = tagger_name
    if tagger_email:
        env["GIT_COMMITTER_EMAIL"] = tagger_email
    if date:
        env["GIT_COMMITTER_DATE"] = date
    try:
        git(repo, "tag", "-a", "-F", "-", "--cleanup=verbatim", name, target, input_text=message + "\n",
            env=env)
    except GitCommandError as error:
        if "already exists" in error.stderr:
            raise TagExists(f"tag {name} already exists") from None
        raise


@contextlib.contextmanager
def writer_lock(repo: Path) -> Iterator[None]:
    """One registry writer at a time per clone (an flock on a file in the git directory), so two
    processes never plan on each other's unpushed tags. Writers in other clones race through the
    remote's atomic push instead."""
    common = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    path = (common if common.is_absolute() else Path(repo) / common) / "mlops-registry.lock"
    with file_lock(path):
        yield


def delete_tags(repo: Path, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        git(repo, "tag", "-d", *names)


class PushRejected(RegistryError):
    """The remote refused the push (usually: someone else created the same tag first)."""


def push_tags(repo: Path, remote: str, names: Sequence[str], *, delete: bool = False,
              lease: tuple[str, str, str] | None = None, env: Mapping[str, str] | None = None) -> None:
    """Push tags all-or-nothing (`--atomic`), never forcing an existing tag.

    `lease=(ref, expected_sha_or_empty, new_source)` also moves `ref` on the remote with a
    compare-and-swap (`--force-with-lease`) in the same atomic push: the per-model sequence ref that
    makes two writers racing for the same counter conflict even when their tag names differ.
    """
    if not names:
        return
    refspecs = [(":" if delete else "") + f"refs/tags/{n}" for n in names]
    options = []
    if lease is not None:
        ref, expected, source = lease
        options.append(f"--force-with-lease={ref}:{expected}")
        refspecs.append(f"{source}:{ref}")
    try:
        git(repo, "push", "--atomic", "--porcelain", *options, remote, *refspecs, env=env)
    except GitCommandError as error:
        text = error.stderr + " " + str(error)
        if any(word in text for word in ("rejected", "already exists", "atomic", "stale")):
            raise PushRejected(f"remote {remote} rejected {', '.join(names)}: {error.stderr.strip()}"
                               ) from None
        raise


SEQUENCE_PREFIX = "refs/mlops-registry/"
SEQUENCE_TRACKING = "refs/mlops-registry-remote/"


def fetch_tags(repo: Path, remote: str, patterns: Sequence[str], env: Mapping[str, str] | None = None
               ) -> None:
    """Fetch only the registry tags matching `patterns` (e.g. `NAME@*`) and the per-model sequence
    refs, nothing else."""
    refspecs = [f"refs/tags/{p}:refs/tags/{p}" for p in patterns]
    refspecs.append(f"+{SEQUENCE_PREFIX}*:{SEQUENCE_TRACKING}*")
    git(repo, "fetch", "--quiet", "--no-tags", remote, *refspecs, env=env)


def ref_sha(repo: Path, ref: str) -> str | None:
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", ref).strip() or None
    except GitCommandError:
        return None


def has_remote(repo: Path, remote: str) -> bool:
    return remote in git(repo, "remote").split()


def commit_tags(repo: Path, rev: str) -> list[str]:
    """Names of the tags pointing at a commit (annotated or not; callers filter)."""
    return git(repo, "tag", "--points-at", rev).split()
