"""Registry operations: git tags (GTO-compatible) for the truth, release assets for the files.

Every write creates one annotated tag through `tag_writer.TagWriter` (atomic push with a
compare-and-swap of the model's sequence ref; a lost race is re-planned on fresh state), with the
counter or version each operation plans here. Reads go through `views` (GTO's views of `state`);
the audit trail's events are `audit.RegistryEvent`.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from mlops_bot.config import Permission, RegistrySection
from mlops_bot.errors import ForgeError, RegistryError
from mlops_bot.forge.base import Forge
from mlops_bot.registry import artifacts as assets
from mlops_bot.registry import git, views
from mlops_bot.registry.audit import RegistryEvent, event_from_record
from mlops_bot.registry.policy import check_promotion
from mlops_bot.registry.state import RegistryState
from mlops_bot.registry.tag_writer import Plan, TagWriter
from mlops_bot.registry.tags import (
    FIRST_VERSION,
    Action,
    SemVer,
    TagName,
    artifact_trailers,
    check_name,
    check_stage,
    checksums_from_trailers,
    gto_message,
    next_counter,
    parse_message,
    parse_tag_name,
    render_message,
)
from mlops_bot.registry.versions import Artifact, Version

Bump = Literal["major", "minor", "patch"]


def parse_spec(spec: str) -> tuple[str, str]:
    """`NAME@vX.Y.Z` or `NAME#STAGE` -> (name, version-or-stage)."""
    match = re.match(r"^(?P<name>[^@#]+)(?:@(?P<version>v[^@#]+)|#(?P<stage>[^@#]+))$", spec)
    if not match:
        raise RegistryError(f"expected NAME@vX.Y.Z or NAME#STAGE, got {spec!r}")
    return match["name"], match["version"] or match["stage"]


class Registry:
    """The model registry of one git repository (optionally with its forge and remote)."""

    def __init__(self, repo: Path, forge: Forge | None = None, remote: str | None = None,
                 policy: RegistrySection | None = None,
                 remote_env: Callable[[], Mapping[str, str]] | None = None) -> None:
        """`remote_env` gives extra environment for git's fetch and push (the bot's per-installation
        token as an HTTP header), asked for on each call so a refreshed token is used."""
        self.repo = git.check_repo(Path(repo))
        self.forge = forge
        self.policy = policy
        self.remote = remote or (policy.remote if policy else "origin")
        self.remote_env = remote_env
        self.writer = TagWriter(self.repo, self.remote, remote_env)

    def has_remote(self) -> bool:
        """Whether writes can be pushed (a clone with its remote, as in CI and the bot)."""
        return git.has_remote(self.repo, self.remote)

    # --------------------------------------------------------------------------- reading
    def records(self, name: str | None = None) -> list[git.TagRecord]:
        return views.read_records(self.repo, name)

    def state(self, name: str | None = None, at: datetime | None = None) -> RegistryState:
        return views.read_state(self.repo, name, at)

    def configured_stages(self) -> list[str] | None:
        """Stages from GTO's own `.gto` config, which `gto show` lists even when unused."""
        return views.configured_stages(self.repo)

    def show(self, name: str | None = None, at: datetime | None = None) -> dict[str, Any]:
        """Exactly `gto show --json` (for `name`: the registry view restricted to that model)."""
        return views.show(self.repo, name, at)

    def show_versions(self, name: str) -> list[dict[str, Any]]:
        """Exactly `gto show NAME --json`: every version with its registrations and stages."""
        return views.show_versions(self.repo, name)

    def history_json(self, name: str | None = None) -> list[dict[str, Any]]:
        """Exactly `gto history [NAME] --json`: the audit trail, newest first."""
        return views.history(self.repo, name)

    def history(self, name: str | None = None) -> list[RegistryEvent]:
        """Every registry event (oldest first), with actor, commit, message and trailers."""
        state = self.state(name)
        by_tag = {r.tag: r for r in self.records(name)}
        events = []
        for row in state.history(name, ascending=True):
            record = by_tag[row["ref"]]
            parsed = parse_tag_name(record.tag)
            assert parsed is not None
            events.append(event_from_record(record, parsed, row["version"]))
        return events

    def latest_version(self, name: str) -> str | None:
        artifact = self.state(name).artifacts.get(name)
        latest = artifact.latest_version() if artifact else None
        return latest.version if latest else None

    def stage_version(self, name: str, stage: str, at: datetime | None = None) -> str | None:
        """The version currently in `stage` (or at time `at`: 'what was in production at T')."""
        artifact = self.state(name, at).artifacts.get(name)
        if artifact is None or not artifact.is_active:
            return None
        bucket = artifact.vstages(sort="timestamp").get(stage, [])
        return bucket[0].version if bucket else None

    def which(self, rev: str = "HEAD") -> list[dict[str, Any]]:
        """Which model versions (and their current stages) sit at a commit."""
        return views.which(self.repo, rev)

    def trailers_of(self, name: str, version: str) -> dict[str, str]:
        """The trailers of the register tag of a version (metrics digest, verdict, ...)."""
        tag = TagName(Action.REGISTER, name, version=version).render()
        records = [r for r in self.records(name) if r.tag == tag]
        if not records:
            raise RegistryError(f"{name} {version} is not registered")
        return dict(parse_message(records[0].message)[1])

    def checksums_of(self, name: str, version: str) -> dict[str, str]:
        tag = TagName(Action.REGISTER, name, version=version).render()
        for record in self.records(name):
            if record.tag == tag:
                return checksums_from_trailers(parse_message(record.message)[1])
        raise RegistryError(f"{name} {version} is not registered")

    # --------------------------------------------------------------------------- writing
    def _write(self, name: str, push: bool, plan: Plan, actor: str | None) -> RegistryEvent:
        """Write one tag through the writer (fresh state, lost races re-planned) and read it back."""
        return self._event(name, self.writer.write(name, push, plan, actor))

    def _event(self, name: str, tag: str) -> RegistryEvent:
        for event in self.history(name):
            if event.tag == tag:
                return event
        raise RegistryError(f"tag {tag} was created but cannot be read back")

    @staticmethod
    def _message(first: str, actor: str | None, trailers: Mapping[str, str] | None,
                 digests: Mapping[str, str] | None = None) -> str:
        pairs = [("Actor", actor)] if actor else []
        pairs += [(k, v) for k, v in (trailers or {}).items()]
        pairs += artifact_trailers(dict(digests or {}))
        return render_message(first, pairs)

    def register(self, name: str, *, version: str | None = None, bump: Bump | None = None,
                 ref: str = "HEAD", artifacts: dict[str, Path] | None = None,
                 trailers: dict[str, str] | None = None, push: bool = False, actor: str | None = None
                 ) -> RegistryEvent:
        """Register the commit at `ref` as a new version (explicit, or bumped from the latest)."""
        check_name(name)
        if version is not None and bump is not None:
            raise RegistryError("give either a version or a bump, not both")
        if version is not None:
            SemVer.parse(version)  # validates; the tag keeps the spelling given, as GTO does
        commit = git.resolve_commit(self.repo, ref)
        files = {k: Path(v) for k, v in (artifacts or {}).items()}
        digests = assets.checksums(files) if files else {}
        if files and self.forge is None:
            raise RegistryError("registering artifacts needs a forge (GitHub, or the local forge)")

        def plan(artifact: Artifact, _tags: list[str]) -> tuple[str, str, str]:
            at_commit = artifact.find_version(commit=commit)
            if at_commit is not None and at_commit.is_registered and at_commit.is_active:
                raise RegistryError(
                    f"commit {commit[:12]} is already registered as {name} {at_commit.version}; "
                    "commit the new model first or register another ref"
                )
            chosen = version
            if chosen is None:
                latest = artifact.latest_version(registered_only=True)
                if latest is None and bump is None:
                    chosen = FIRST_VERSION
                else:
                    base = SemVer.parse(latest.version) if latest else SemVer(0, 0, 0)
                    chosen = str(base.bump(bump or "patch"))
            if artifact.find_version(name=chosen, include_discovered=True) is not None:
                raise RegistryError(f"{name} {chosen} is already registered; pick another version or --bump")
            tag = TagName(Action.REGISTER, name, version=chosen).render()
            message = self._message(gto_message(Action.REGISTER, name, version=chosen), actor, trailers,
                                    digests)
            return tag, commit, message

        if not files or self.forge is None:
            return self._write(name, push, plan, actor)
        resumed = self._finish_registration(name, commit, files, digests, push)
        if resumed is not None:
            return resumed
        # Files first (a draft nobody can download), then the tag, then the release is published.
        draft = assets.stage_draft(self.forge, name, commit, files, digests)
        event = self._write(name, push, plan, actor)
        assets.publish_draft(self.forge, draft, event.tag, f"{name} {event.version} (commit {commit[:12]})")
        return event

    def has_release(self, name: str, version: str, files: Iterable[str]) -> bool:
        """Whether the version's release is published with these files and SHA256SUMS."""
        tag = TagName(Action.REGISTER, name, version=version).render()
        return self.forge is not None and assets.release_is_complete(self.forge.get_release(tag), files)

    def _finish_registration(self, name: str, commit: str, files: Mapping[str, Path],
                             digests: Mapping[str, str], push: bool) -> RegistryEvent | None:
        """The same registration stopped after its tag was created: push the tag if it is only
        local, complete the draft and publish it. None when there is nothing of it to finish."""
        assert self.forge is not None
        if self.writer.remote_enabled(push):
            self.writer.fetch(name)
        artifact = self.state(name).artifacts.get(name)
        found = artifact.find_version(commit=commit) if artifact else None
        if found is None or not (found.is_registered and found.is_active):
            return None
        version = found.version
        if self.checksums_of(name, version) != dict(digests):
            return None  # other files: the plan refuses it with the usual message
        tag = TagName(Action.REGISTER, name, version=version).render()
        if self.has_release(name, version, files):
            return None  # done already: refused as a second registration of the commit
        if self.writer.remote_enabled(push):
            try:
                self.writer.push(tag)
            except git.PushRejected as error:
                raise RegistryError(f"{tag} exists only in this clone and {self.remote} has another tag of "
                                    f"that name; delete the local tag (git tag -d {tag}) and register again: "
                                    f"{error}") from None
        published = self.forge.get_release(tag)
        if published is not None:  # half-uploaded by a version of mlops-bot without drafts
            assets.complete_release(self.forge, published, files, digests)
            return self._event(name, tag)
        draft = assets.stage_draft(self.forge, name, commit, files, digests)
        assets.publish_draft(self.forge, draft, tag, f"{name} {version} (commit {commit[:12]})")
        return self._event(name, tag)

    def _version(self, artifact: Artifact, name: str, version: str | None, commit: str | None
                 ) -> Version | None:
        if version is not None:
            found = artifact.find_version(name=version)
            if found is None or not found.is_registered:
                raise RegistryError(f"{name} {version} is not registered")
            if not found.is_active:
                raise RegistryError(f"{name} {version} was deregistered")
            return found
        return artifact.find_version(commit=commit)

    def _gates_passed(self, name: str, version: str) -> bool | None:
        """The version's validation verdict: the register tag's `Verdict` trailer, else report.json."""
        try:
            verdict = self.trailers_of(name, version).get("Verdict")
        except RegistryError:
            verdict = None
        if verdict is not None:
            return verdict == "pass"
        if self.forge is None:
            return None
        tag = TagName(Action.REGISTER, name, version=version).render()
        release = self.forge.get_release(tag)
        if release is None or not any(a.name == "report.json" for a in release.assets):
            return None
        import json

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.forge.download_release_asset(tag, "report.json", Path(tmp) / "report.json")
                report = json.loads(path.read_text())
            except (ForgeError, ValueError):
                return None
        return report.get("verdict") == "pass" if isinstance(report, dict) else None

    def assign(self, name: str, stage: str, *, version: str | None = None, ref: str | None = None,
               actor: str | None = None, actor_permission: Permission | None = None,
               gates_passed: bool | None = None, trailers: dict[str, str] | None = None,
               push: bool = False, force: bool = False) -> RegistryEvent:
        """Assign a stage to a version (registering the commit at `ref` on the fly if needed),
        enforcing the promotion policy when one is configured."""
        check_name(name)
        check_stage(stage)
        if version is not None and ref is not None:
            raise RegistryError("give either a version or a ref, not both")
        commit = git.resolve_commit(self.repo, ref or "HEAD") if version is None else None
        if push:
            self.writer.remote_enabled(True)
            self.writer.fetch(name)
        artifact = self.state(name).artifacts.get(name) or Artifact(name)
        found = self._version(artifact, name, version, commit)
        if found is None:
            assert commit is not None
            self.register(name, ref=commit, push=push, actor=actor)
            artifact = self.state(name).artifacts[name]
            found = artifact.find_version(commit=commit)
            assert found is not None
        target_version, target_commit = found.version, found.commit_hexsha
        if self.policy is not None:
            passed = gates_passed if gates_passed is not None else self._gates_passed(name, target_version)
            check_promotion(self.policy, name=name, version=target_version, stage=stage,
                            reached_stages=set(found.stages), actor=actor,
                            actor_permission=actor_permission, gates_passed=passed)

        def plan(artifact: Artifact, tags: list[str]) -> tuple[str, str, str]:
            current = artifact.find_version(name=target_version, include_discovered=True)
            if not force and current is not None and any(s.stage == stage for s in current.vstages()):
                raise RegistryError(f"{name} {target_version} is already in stage {stage}")
            tag = TagName(Action.ASSIGN, name, stage=stage, counter=next_counter(tags, name)).render()
            first = gto_message(Action.ASSIGN, name, version=target_version, stage=stage)
            return tag, target_commit, self._message(first, actor, trailers)

        return self._write(name, push, plan, actor)

    def unassign(self, name: str, stage: str, *, version: str | None = None, ref: str | None = None,
                 actor: str | None = None, trailers: dict[str, str] | None = None, push: bool = False
                 ) -> RegistryEvent:
        check_name(name)
        check_stage(stage)

        def plan(artifact: Artifact, tags: list[str]) -> tuple[str, str, str]:
            target = version
            if target is None and ref is None:
                bucket = artifact.vstages(sort="timestamp").get(stage, [])
                if not bucket:
                    raise RegistryError(f"no version of {name} is in stage {stage}")
                target = bucket[0].version
            commit = git.resolve_commit(self.repo, ref) if ref is not None and target is None else None
            found = self._version(artifact, name, target, commit)
            if found is None:
                raise RegistryError(f"no version of {name} at {ref}")
            if stage not in found.stages:
                raise RegistryError(f"stage {stage} is not assigned to {name} {found.version}")
            tag = TagName(Action.UNASSIGN, name, stage=stage, counter=next_counter(tags, name)).render()
            first = gto_message(Action.UNASSIGN, name, version=found.version, stage=stage)
            return tag, found.commit_hexsha, self._message(first, actor, trailers)

        return self._write(name, push, plan, actor)

    def deregister(self, name: str, version: str, *, actor: str | None = None,
                   trailers: dict[str, str] | None = None, push: bool = False) -> RegistryEvent:
        check_name(name)

        def plan(artifact: Artifact, _tags: list[str]) -> tuple[str, str, str]:
            found = self._version(artifact, name, version, None)
            assert found is not None
            tag = TagName(Action.DEREGISTER, name, version=version).render()
            first = gto_message(Action.DEREGISTER, name, version=version)
            return tag, found.commit_hexsha, self._message(first, actor, trailers)

        return self._write(name, push, plan, actor)

    def deprecate(self, name: str, *, actor: str | None = None, trailers: dict[str, str] | None = None,
                  push: bool = False) -> RegistryEvent:
        check_name(name)

        def plan(artifact: Artifact, tags: list[str]) -> tuple[str, str, str]:
            events = artifact.events()
            if not events:
                raise RegistryError(f"model {name!r} is not in the registry")
            if not artifact.is_active:
                raise RegistryError(f"model {name} is deprecated already")
            simple = TagName(Action.DEPRECATE, name).render()
            # A model deprecated before and revived needs a counted tag (GTO's --force form).
            tag = simple if simple not in tags else TagName(
                Action.DEPRECATE, name, counter=next_counter(tags, name)).render()
            first = gto_message(Action.DEPRECATE, name)
            return tag, events[0].commit_hexsha, self._message(first, actor, trailers)

        return self._write(name, push, plan, actor)

    # ------------------------------------------------------------------------- artifacts
    def resolve_spec(self, name: str, spec: str) -> str:
        """`vX.Y.Z` or a stage name -> the registered version it designates."""
        if SemVer.is_valid(spec):
            return spec
        version = self.stage_version(name, spec)
        if version is None:
            raise RegistryError(f"no version of {name} is in stage {spec!r}")
        return version

    def download(self, name: str, spec: str, dest: Path) -> Path:
        """Fetch a version's artifacts into `dest`, verifying every checksum first."""
        if self.forge is None:
            raise RegistryError("downloading artifacts needs a forge (GitHub, or the local forge)")
        version = self.resolve_spec(name, spec)
        tag = TagName(Action.REGISTER, name, version=version).render()
        return assets.download_release(self.forge, tag, Path(dest), expected=self.checksums_of(name, version))

