"""The registry's tag grammar, exactly as GTO writes and reads it (pure: no git, no clock).

Tag names:  register `NAME@vX.Y.Z`, deregister `NAME@vX.Y.Z!`, assign `NAME#STAGE#N`,
unassign `NAME#STAGE!#N`, deprecate `NAME@deprecated` (`#N` when forced). `N` counts per artifact.
Monorepo names `dir:name` are written `dir=name` in tags. Tag messages are GTO's first line, then a
blank line and structured trailers (`Key: value`) that GTO keeps as free text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import StrEnum
from functools import total_ordering

from mlops_bot.errors import RegistryError

SEPARATOR_IN_NAME = ":"
SEPARATOR_IN_TAG = "="

_DIRNAME = r"[a-zA-Z0-9-_./]+"
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
NAME_RE = re.compile(f"^{_NAME}$")
FULLNAME_RE = re.compile(f"^(?P<dirname>{_DIRNAME}{SEPARATOR_IN_NAME})?(?P<name>{_NAME})$")
_FULLNAME_IN_TAG = f"(?P<dirname>{_DIRNAME}{SEPARATOR_IN_TAG})?(?P<name>{_NAME})"
TAG_RE = re.compile(
    f"^(?P<artifact>{_FULLNAME_IN_TAG})(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))"
    r"|@((?P<deprecated>deprecated)|(?P<created>created)))(#(?P<counter>[0-9]+))?$"
)
SEMVER_RE = re.compile(f"^v{_SEMVER}$")


class Action(StrEnum):
    REGISTER = "register"
    DEREGISTER = "deregister"
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    DEPRECATE = "deprecate"


def name_to_tag(name: str) -> str:
    return name.replace(SEPARATOR_IN_NAME, SEPARATOR_IN_TAG)


def tag_to_name(value: str) -> str:
    return value.replace(SEPARATOR_IN_TAG, SEPARATOR_IN_NAME)


def name_slug(name: str) -> str:
    """A model name as one word for places that take neither ':' nor '/' (workflow artifact names,
    deployment environments, file names): every other character becomes '-'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


def is_valid_name(name: str) -> bool:
    return bool(FULLNAME_RE.match(name))


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise RegistryError(
            f"invalid model name {name!r}: use letters, digits, '-', '_', '/', starting and ending "
            "with a letter or digit (monorepo form 'dir:name')"
        )
    return name


def check_stage(stage: str) -> str:
    if not NAME_RE.match(stage):
        raise RegistryError(
            f"invalid stage {stage!r}: use letters, digits, '-', '_', '/', starting and ending with a "
            "letter or digit"
        )
    return stage


@total_ordering
class SemVer:
    """A `vX.Y.Z[-pre][+build]` version with semver 2.0 precedence (build metadata ignored).

    Immutable by convention; a slotted class rather than a dataclass so that reading the registry
    does not import `dataclasses`/`inspect` (start-up time of `registry show`)."""

    __slots__ = ("build", "major", "minor", "patch", "prerelease")

    def __init__(self, major: int, minor: int, patch: int, prerelease: str | None = None,
                 build: str | None = None) -> None:
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
        self.build = build

    def __repr__(self) -> str:
        return (f"SemVer(major={self.major!r}, minor={self.minor!r}, patch={self.patch!r}, "
                f"prerelease={self.prerelease!r}, build={self.build!r})")

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = SEMVER_RE.fullmatch(text)
        if not match:
            raise RegistryError(f"invalid version {text!r}: expected 'v' + semver, e.g. v1.2.3")
        return cls(int(match["major"]), int(match["minor"]), int(match["patch"]),
                   match["prerelease"], match["buildmetadata"])

    @staticmethod
    def is_valid(text: str) -> bool:
        return bool(SEMVER_RE.fullmatch(text))  # `$` alone would also accept a trailing newline

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.prerelease is not None:
            text += f"-{self.prerelease}"
        if self.build is not None:
            text += f"+{self.build}"
        return text

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        pre: tuple[tuple[int, int, str], ...] = ()
        if self.prerelease is not None:
            # Numeric identifiers sort before alphanumeric ones, numerically among themselves.
            pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease.split("."))
        return (self.major, self.minor, self.patch, 0 if self.prerelease is not None else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def bump(self, part: str) -> SemVer:
        if part == "major":
            return SemVer(self.major + 1, 0, 0)
        if part == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if part == "patch":  # as GTO (python-semver 3) does, even from a prerelease
            return SemVer(self.major, self.minor, self.patch + 1)
        raise RegistryError(f"unknown bump {part!r}: use major, minor or patch")


FIRST_VERSION = "v0.0.1"


class TagName:
    """A parsed registry tag name (immutable by convention, compared by value)."""

    __slots__ = ("action", "counter", "name", "stage", "version")

    def __init__(self, action: Action, name: str, version: str | None = None, stage: str | None = None,
                 counter: int | None = None) -> None:
        self.action = action
        self.name = name  # artifact name in name form (`dir:name`)
        self.version = version
        self.stage = stage
        self.counter = counter

    def _key(self) -> tuple[Action, str, str | None, str | None, int | None]:
        return (self.action, self.name, self.version, self.stage, self.counter)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TagName):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"TagName(action={self.action!r}, name={self.name!r}, version={self.version!r}, "
                f"stage={self.stage!r}, counter={self.counter!r})")

    def render(self) -> str:
        base = name_to_tag(self.name)
        if self.action is Action.REGISTER:
            text = f"{base}@{self.version}"
        elif self.action is Action.DEREGISTER:
            text = f"{base}@{self.version}!"
        elif self.action is Action.ASSIGN:
            text = f"{base}#{self.stage}"
        elif self.action is Action.UNASSIGN:
            text = f"{base}#{self.stage}!"
        else:
            text = f"{base}@deprecated"
        return text if self.counter is None else f"{text}#{self.counter}"


def parse_tag_name(tag: str) -> TagName | None:
    """Parse a tag name; None for tags that are not registry tags (including GTO's `@created`)."""
    match = TAG_RE.match(tag)
    if not match or match["created"]:
        return None
    name = tag_to_name(match["artifact"])
    counter = int(match["counter"]) if match["counter"] else None
    if match["deprecated"]:
        return TagName(Action.DEPRECATE, name, counter=counter)
    cancel = match["cancel"] == "!"
    if match["version"]:
        return TagName(Action.DEREGISTER if cancel else Action.REGISTER, name,
                       version=match["version"], counter=counter)
    return TagName(Action.UNASSIGN if cancel else Action.ASSIGN, name, stage=match["stage"], counter=counter)


def next_counter(tag_names: Iterable[str], name: str) -> int:
    """GTO's counter: the highest `#N` on any tag of this artifact, plus one."""
    highest = 0
    for tag in tag_names:
        parsed = parse_tag_name(tag)
        if parsed and parsed.name == name and parsed.counter is not None:
            highest = max(highest, parsed.counter)
    return highest + 1


# ------------------------------------------------------------------------------------ messages
def gto_message(action: Action, name: str, *, version: str | None = None, stage: str | None = None) -> str:
    """The first line GTO writes for each action (gto/registry.py)."""
    if action is Action.REGISTER:
        return f"Registering artifact {name} version {version}"
    if action is Action.DEREGISTER:
        return f"Deregistering artifact {name} version {version}"
    if action is Action.ASSIGN:
        return f"Assigning stage {stage} to artifact {name} version {version}"
    if action is Action.UNASSIGN:
        return f"Unassigning stage '{stage}' to artifact '{name}' version '{version}'"
    return f"Deprecating artifact '{name}'"


_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


def render_message(first_line: str, trailers: Sequence[tuple[str, str]] = ()) -> str:
    """GTO's first line, then a blank line and `Key: value` trailers (one per line)."""
    if "\n" in first_line:
        raise RegistryError("a tag's first line cannot contain a newline")
    lines = []
    for key, value in trailers:
        if not _TRAILER_KEY.match(key):
            raise RegistryError(f"invalid trailer key {key!r}: use letters, digits and '-'")
        if "\n" in value:
            raise RegistryError(f"trailer {key} cannot contain a newline")
        lines.append(f"{key}: {value.strip()}".rstrip())
    return first_line if not lines else first_line + "\n\n" + "\n".join(lines)


def parse_message(message: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a tag message into its first line and the trailers of its last paragraph."""
    text = message.strip()
    first, _, rest = text.partition("\n")
    paragraphs = [p for p in rest.strip().split("\n\n") if p.strip()]
    trailers: list[tuple[str, str]] = []
    if paragraphs:
        candidate: list[tuple[str, str]] = []
        for line in paragraphs[-1].split("\n"):
            key, sep, value = line.partition(":")
            if not sep or not _TRAILER_KEY.match(key):
                candidate = []
                break
            candidate.append((key, value.strip()))
        trailers = candidate
    return first, trailers


ARTIFACT_TRAILER = "Artifact-Sha256"


def artifact_trailers(checksums: dict[str, str]) -> list[tuple[str, str]]:
    """One `Artifact-Sha256: <hex> <file>` trailer per artifact, sorted by file name."""
    return [(ARTIFACT_TRAILER, f"{digest} {name}") for name, digest in sorted(checksums.items())]


def checksums_from_trailers(trailers: Sequence[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in trailers:
        if key == ARTIFACT_TRAILER:
            digest, _, name = value.partition(" ")
            if name:
                found[name] = digest
    return found
