"""`model.paths`: the glob grammar and which models a set of changed files touches (pure).

Patterns are repository-relative POSIX paths: `*` and `?` match within one path segment, `**`
matches any number of whole segments, and a trailing `/` means everything below a folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_bot.config.schema import MlopsConfig


def check_path_pattern(pattern: str) -> str:
    """A pattern `model.paths` accepts; ValueError (the config's message) otherwise."""
    if not pattern.strip() or pattern != pattern.strip():
        raise ValueError(f"expected a repository path or glob such as 'models/churn/', got {pattern!r}")
    if pattern.startswith("/") or "\\" in pattern or ".." in pattern.split("/"):
        raise ValueError(f"{pattern!r}: expected a path relative to the repository root, with '/' and "
                         "without '..' (e.g. 'models/churn/**')")
    return pattern


@lru_cache(maxsize=512)
def _pattern_re(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("/"):
        pattern += "**"
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
            continue
        text = "".join(
            "[^/]*" if char == "*" else "[^/]" if char == "?" else re.escape(char) for char in segment
        )
        parts.append(text if last else text + "/")
    return re.compile("".join(parts) + r"\Z")


def path_matches(path: str, pattern: str) -> bool:
    """Whether the repository path `path` (POSIX, relative) is matched by a `model.paths` pattern."""
    return bool(_pattern_re(pattern).match(path.removeprefix("./")))


def touches(config: MlopsConfig, changed: Iterable[str]) -> bool:
    """Whether a change of these repository paths concerns the model: a model without `paths`
    is touched by every change; any model by a change of the file that declares it."""
    changed = [path.removeprefix("./") for path in changed]
    if any(path == config.source for path in changed):
        return True
    if not config.model.paths:
        return bool(changed)
    return any(path_matches(path, pattern) for path in changed for pattern in config.model.paths)


def changed_models(models: Sequence[MlopsConfig], changed: Iterable[str]) -> list[MlopsConfig]:
    """The models a change of these repository paths concerns, in config order."""
    changed = list(changed)
    return [config for config in models if touches(config, changed)]
