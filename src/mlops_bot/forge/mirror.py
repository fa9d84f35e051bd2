"""A read-only stand-in forge serving one release's assets from a local folder.

The pull-request workflow downloads the production version's artifacts in a step of its own, the
only step that holds the token (`mlops-bot registry download --if-exists`); the validate step, which
runs the pull request's training code, gets this folder instead of a token. The registry still
verifies every file against the checksums recorded in its git tag, so a folder holding anything but
the exact registered artifacts is refused, never silently used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Release, ReleaseAsset


class ReleaseMirror:
    """`get_release` / `download_release_asset` (what the registry's downloads use) over `folder`,
    the one release it holds. An empty or missing folder holds no release."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.is_symlink())

    def get_release(self, tag: str) -> Release | None:
        files = self._files()
        if not files:
            return None
        assets = [ReleaseAsset(id=i, name=p.name, size=p.stat().st_size) for i, p in enumerate(files, 1)]
        return Release(id=1, tag_name=tag, name=tag, assets=assets)

    def download_release_asset(self, tag: str, name: str, dest: Path) -> Path:
        source = self.folder / name
        if Path(name).name != name or not source.is_file() or source.is_symlink():
            raise ForgeError(f"the downloaded baseline {self.folder} has no asset {name!r} for {tag}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest
