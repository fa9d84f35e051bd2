"""Pin our own actions to a release's commit: `uses: mlops-bot/mlops-bot/actions/X@v0` (any ref)
becomes `uses: mlops-bot/mlops-bot/actions/X@<40-hex SHA> # vX.Y.Z`. The release workflow runs it over
the workflow templates (the copies `mlops-bot init` writes) and the docs before building the package,
so what users copy is pinned by full commit SHA, with the version in a comment for Dependabot.

`python -m mlops_bot.adopt.pinning --sha SHA --version vX.Y.Z FILE...` rewrites the files in place."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

OWN_REPOSITORY = "mlops-bot/mlops-bot"
_SHA = re.compile(r"^[0-9a-f]{40}$")
_VERSION = re.compile(r"^v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")


def _uses(repository: str) -> re.Pattern[str]:
    # `uses: owner/name[/path]@ref` plus any trailing comment, in YAML or in a markdown code block.
    return re.compile(r"(?P<head>uses:\s*" + re.escape(repository) + r"(?P<path>(?:/[\w.-]+)*))"
                      r"@(?P<ref>[\w.\-/<>\s]*?[\w.\->])(?P<comment>[ \t]+#[^\n]*)?$", re.MULTILINE)


def pin_actions(text: str, sha: str, version: str, repository: str = OWN_REPOSITORY) -> str:
    """Every reference to `repository`'s actions, at any ref, pinned to `sha` with `# version`."""
    if not _SHA.match(sha):
        raise ValueError(f"not a full commit SHA: {sha!r}")
    if not _VERSION.match(version):
        raise ValueError(f"not a release version vX.Y.Z: {version!r}")
    return _uses(repository).sub(lambda m: f"{m.group('head')}@{sha} # {version}", text)


def unpinned(text: str, repository: str = OWN_REPOSITORY) -> list[str]:
    """References to `repository` not pinned to a full SHA (what a released file must not have)."""
    return [m.group(0) for m in _uses(repository).finditer(text) if not _SHA.match(m.group("ref"))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_bot.adopt.pinning", description=__doc__)
    parser.add_argument("--sha", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        for path in args.files:
            before = path.read_text(encoding="utf-8")
            after = pin_actions(before, args.sha, args.version)
            if after != before:
                path.write_text(after, encoding="utf-8")
                print(f"pinned {path}")
            left = unpinned(after)
            if left:
                print(f"{path}: still unpinned: {left[0]}", file=sys.stderr)
                return 1
    except (OSError, ValueError) as error:
        print(f"pinning: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
