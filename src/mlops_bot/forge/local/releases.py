"""The local forge's releases (drafts, publishing, one published release per tag) and their assets,
plain files under `releases/<release id>/`."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Release, ReleaseAsset
from mlops_bot.forge.local.store import LocalStore


class LocalReleases(LocalStore):
    """Releases by id; a draft is invisible to `get_release` until published."""

    def get_release(self, tag: str) -> Release | None:
        with self._state(write=False) as state:
            for row in state["releases"].values():
                if row["tag_name"] == tag and not row.get("draft"):
                    return Release.model_validate(row)
        return None

    def create_release(self, tag: str, name: str = "", body: str = "", prerelease: bool = False,
                       draft: bool = False) -> Release:
        with self._state() as state:
            if any(r["tag_name"] == tag and not r.get("draft") for r in state["releases"].values()):
                raise ForgeError(f"local forge: a release for tag {tag} already exists")
            rid = self._next_id(state)
            row = {
                "id": rid, "tag_name": tag, "name": name or tag, "body": body, "prerelease": prerelease,
                "draft": draft, "html_url": self._url("releases", tag), "assets": [],
            }
            state["releases"][str(rid)] = row
        return Release.model_validate(row)

    def list_draft_releases(self) -> list[Release]:
        with self._state(write=False) as state:
            return [Release.model_validate(r) for r in state["releases"].values() if r.get("draft")]

    def update_release(self, release_id: int, *, tag: str | None = None, name: str | None = None,
                       body: str | None = None, draft: bool | None = None) -> Release:
        with self._state() as state:
            row = state["releases"].get(str(release_id))
            if row is None:
                raise ForgeError(f"local forge: release {release_id} not found")
            new_tag = row["tag_name"] if tag is None else tag
            publishing = not (row.get("draft") if draft is None else draft)
            if publishing and any(r["tag_name"] == new_tag and not r.get("draft") and r["id"] != row["id"]
                                  for r in state["releases"].values()):
                raise ForgeError(f"local forge: a release for tag {new_tag} already exists")
            row["tag_name"] = new_tag
            row["html_url"] = self._url("releases", new_tag)
            for key, value in (("name", name), ("body", body), ("draft", draft)):
                if value is not None:
                    row[key] = value
        return Release.model_validate(row)

    def delete_release(self, release_id: int) -> None:
        with self._state() as state:
            if state["releases"].pop(str(release_id), None) is None:
                raise ForgeError(f"local forge: release {release_id} not found")
        shutil.rmtree(self.root / "releases" / str(release_id), ignore_errors=True)

    def upload_release_asset(self, release_id: int, path: Path, name: str | None = None) -> ReleaseAsset:
        name = name or Path(path).name
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            # GitHub stores asset names, not paths; here a name becomes a file under the release.
            raise ForgeError(f"local forge: {name!r} is not a valid release asset name")
        folder = self.root / "releases" / str(release_id)
        with self._state() as state:
            row = state["releases"].get(str(release_id))
            if row is None:
                raise ForgeError(f"local forge: release {release_id} not found")
            if any(a["name"] == name for a in row["assets"]):
                raise ForgeError(f"local forge: release {row['tag_name']} already has an asset named {name}")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, folder / name)
            aid = self._next_id(state)
            asset = {
                "id": aid, "name": name, "size": (folder / name).stat().st_size,
                "browser_download_url": (folder / name).resolve().as_uri(),
            }
            row["assets"].append(asset)
        return ReleaseAsset.model_validate(asset)

    def download_release_asset(self, tag: str, name: str, dest: Path) -> Path:
        release = self.get_release(tag)
        if release is None:
            raise ForgeError(f"local forge: no release for tag {tag}")
        if not any(a.name == name for a in release.assets):
            raise ForgeError(f"local forge: release {tag} has no asset named {name}")
        dest = Path(dest)
        target = dest / name if dest.is_dir() else dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.root / "releases" / str(release.id) / name, target)
        return target
