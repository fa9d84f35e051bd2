"""Writing one registry tag safely (`TagWriter`): plan it against fresh state, create it, and with
`push` push it atomically together with a compare-and-swap of the model's sequence ref
(`refs/mlops-registry/NAME`, invisible to GTO). When a concurrent writer got there first (same tag
name, or a different tag with the same counter) the push is rejected, the local tag dropped and the
plan run again on fresh state (bounded), so racing promotions land with distinct counters or fail
with a clear message: nothing lost or duplicated. The git edge of every registry write."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mlops_bot.errors import RegistryError
from mlops_bot.registry import git, views
from mlops_bot.registry.tags import name_to_tag
from mlops_bot.registry.versions import Artifact

PUSH_ATTEMPTS = 12
# plan(artifact, the model's tag names) -> (tag, commit, message), raising RegistryError to refuse.
Plan = Callable[[Artifact, list[str]], tuple[str, str, str]]


def strictly_after(records: list[git.TagRecord]) -> str | None:
    """A tag date one second after the model's newest event when that is not in the past.

    Tag dates have one-second resolution and GTO orders events by date alone, so two operations in
    the same second (register then deprecate, say) would be ambiguous; nudging the date keeps
    each model's audit trail strictly ordered for us and for `gto` alike.
    """
    if not records:
        return None
    newest = max(max(r.tag_time, int(r.committed_at.timestamp())) for r in records)
    now = int(time.time())
    return None if newest < now else f"{newest + 1} +0000"


class TagWriter:
    """Creates and pushes registry tags of one repository against `remote`. `remote_env` gives extra
    environment for git's fetch and push (the bot's per-installation token as an HTTP header), asked
    for on each call so a refreshed token is used."""

    def __init__(self, repo: Path, remote: str, remote_env: Callable[[], Mapping[str, str]] | None = None
                 ) -> None:
        self.repo = repo
        self.remote = remote
        self.remote_env = remote_env

    def remote_enabled(self, push: bool) -> bool:
        """Whether to push: `push` asked for and the remote exists (asked for without it: an error)."""
        if not push:
            return False
        if not git.has_remote(self.repo, self.remote):
            raise RegistryError(f"cannot push: {self.repo} has no remote named {self.remote!r}")
        return True

    def env(self) -> Mapping[str, str] | None:
        return self.remote_env() if self.remote_env is not None else None

    def fetch(self, name: str) -> None:
        """The model's registry tags from the remote, under the clone's writer lock: two processes
        fetching into one clone at once fail to update the same tracking ref ("cannot lock ref")."""
        with git.writer_lock(self.repo):
            self._fetch(name)

    def _fetch(self, name: str) -> None:
        """`fetch` for a caller that holds the writer lock already."""
        base = name_to_tag(name)
        try:
            git.fetch_tags(self.repo, self.remote, [f"{base}@*", f"{base}#*"], env=self.env())
        except git.GitCommandError as error:
            raise RegistryError(f"cannot fetch registry tags of {name} from {self.remote}: "
                                f"{error.stderr.strip()}") from None

    def push(self, tag: str) -> None:
        """Push one existing tag (no sequence lease: finishing a registration whose tag is local)."""
        git.push_tags(self.repo, self.remote, [tag], env=self.env())

    def _identity(self, actor: str | None) -> tuple[str | None, str | None]:
        if actor:
            return actor, f"{actor}@users.noreply.github.com"
        try:
            git.git(self.repo, "var", "GIT_COMMITTER_IDENT")
            return None, None
        except git.GitCommandError:
            return "mlops-bot", "mlops-bot@users.noreply.github.com"

    def write(self, name: str, push: bool, plan: Plan, actor: str | None) -> str:
        """Run `plan` against fresh state, tag, push; on a lost race drop the local tag, refetch and
        plan again. Returns the tag written."""
        remote = self.remote_enabled(push)
        tagger, email = self._identity(actor)
        last_error: Exception | None = None
        with git.writer_lock(self.repo):
            for _attempt in range(PUSH_ATTEMPTS):
                if remote:
                    self._fetch(name)
                state = views.read_state(self.repo, name)
                artifact = state.artifacts.get(name) or Artifact(name)
                records = views.read_records(self.repo, name)
                tag, commit, message = plan(artifact, [r.tag for r in records])
                try:
                    git.create_tag(self.repo, tag, commit, message, tagger_name=tagger, tagger_email=email,
                                   date=strictly_after(records))
                except git.TagExists as error:  # a writer outside the lock (an older version, gto)
                    last_error = error
                    continue
                if not remote:
                    return tag
                base = name_to_tag(name)
                expected = git.ref_sha(self.repo, git.SEQUENCE_TRACKING + base) or ""
                try:
                    git.push_tags(self.repo, self.remote, [tag],
                                  lease=(git.SEQUENCE_PREFIX + base, expected, f"refs/tags/{tag}"),
                                  env=self.env())
                    return tag
                except git.PushRejected as error:
                    git.delete_tags(self.repo, [tag])
                    last_error = error
        raise RegistryError(
            f"{name}: lost the race for a registry tag {PUSH_ATTEMPTS} times against {self.remote} "
            f"(concurrent promotions); retry later. Last error: {last_error}"
        )
