"""Where a scheduled drift check on a hosted runner gets the prediction log from.

The model server writes its log (a directory of SQLite segments) where it runs; a hosted runner has
none. `--log-source` names where the production log is published:

- `release:TAG/ASSET`: an archive (.tar.gz, .tgz, .zip) attached to a release of this repository
  (e.g. uploaded daily by the serving side with `gh release upload`);
- `https://...`: an archive at a URL;
- an fsspec URL (`s3://bucket/predictions/`, `gs://...`, `az://...`, `file:///...`): a directory or an
  archive, read through fsspec (install fsspec and its filesystem package, e.g. s3fs);
- a local directory.

Archives are unpacked with tarfile's `data` filter / checked zip member names: nothing lands outside
the destination.
"""

from __future__ import annotations

import importlib
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from mlops_bot.errors import DataError, MissingExtraError

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
NOT_CONFIGURED = (
    "no prediction log to check: on a hosted runner the model server's log is not on disk. Set "
    "MLOPS_PREDICTION_LOG (the drift workflow) or --log-source to where production publishes it: "
    "release:TAG/ASSET, an https:// archive, or an fsspec URL such as s3://bucket/predictions/ "
    "(docs/monitoring.md, 'Drift checks on hosted runners')"
)


def _unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                parts = PurePosixPath(member).parts
                if member.startswith("/") or ".." in parts:
                    raise DataError(f"{archive.name}: refusing the archive member {member!r}")
            bundle.extractall(dest)  # noqa: S202 - every member name checked above
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(archive) as bundle:
            try:
                bundle.extractall(dest, filter="data")
            except tarfile.FilterError as error:
                raise DataError(f"{archive.name}: refusing the archive ({error})") from None
    else:
        raise DataError(f"{archive.name}: a prediction log archive must be one of {', '.join(ARCHIVES)}")
    # An archive of the folder itself (predictions/...) or of its contents: both work.
    entries = [p for p in dest.iterdir()]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def fetch_prediction_log(source: str, dest: Path, *, forge: Any = None,
                         client: httpx.Client | None = None) -> Path:
    """The prediction log directory `source` names, fetched into `dest` when it is remote."""
    source = source.strip()
    if not source:
        raise DataError(NOT_CONFIGURED)
    with tempfile.TemporaryDirectory() as tmp:
        if source.startswith("release:"):
            tag, _, asset = source.removeprefix("release:").partition("/")
            if not tag or not asset or "/" in asset:
                raise DataError(f"--log-source {source!r}: expected release:TAG/ASSET")
            if forge is None:
                raise DataError("--log-source release:...: needs GITHUB_TOKEN (contents: read)")
            return _unpack(forge.download_release_asset(tag, asset, Path(tmp) / asset), dest)
        if source.startswith(("https://", "http://")):
            target = Path(tmp) / PurePosixPath(httpx.URL(source).path).name
            with client or httpx.Client(follow_redirects=True, timeout=120) as http:
                try:
                    with http.stream("GET", source) as response:
                        response.raise_for_status()
                        with target.open("wb") as handle:
                            for chunk in response.iter_bytes():
                                handle.write(chunk)
                except httpx.HTTPError as error:
                    raise DataError(f"--log-source {source}: cannot download ({error})") from None
            return _unpack(target, dest)
        if "://" in source:
            try:
                fsspec = importlib.import_module("fsspec")
            except ImportError:
                raise MissingExtraError(f"--log-source {source}: reading it needs fsspec (and the "
                                        "filesystem's package, e.g. s3fs): pip install fsspec s3fs") from None
            try:
                fs, path = fsspec.core.url_to_fs(source)
                if path.lower().endswith(ARCHIVES):
                    local = Path(tmp) / PurePosixPath(path).name
                    fs.get(path, str(local))
                    return _unpack(local, dest)
                dest.mkdir(parents=True, exist_ok=True)
                fs.get(path.rstrip("/") + "/", str(dest), recursive=True)
                return dest
            except (OSError, ValueError) as error:
                raise DataError(f"--log-source {source}: cannot read it ({error})") from None
        local_dir = Path(source)
        if local_dir.is_dir():
            return local_dir
        if local_dir.is_file():
            return _unpack(local_dir, dest)
        raise DataError(f"--log-source {source}: no such directory or archive")
