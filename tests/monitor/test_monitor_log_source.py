"""`--log-source`: the drift check on a hosted runner fetches the prediction log from where production
publishes it (a release asset, an https archive over a real loopback server, an fsspec URL, a
directory); an archive cannot write outside its destination; no source is a clear error."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.errors import DataError
from mlops_bot.forge.local import LocalForge
from mlops_bot.monitor.log_source import NOT_CONFIGURED, fetch_prediction_log


def _log_dir(root: Path) -> Path:
    log = root / "predictions"
    (log / "credit-risk").mkdir(parents=True)
    (log / "credit-risk" / "segment-0001.sqlite").write_bytes(b"SQLite format 3\x00rows")
    return log


def _tarball(log: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(log, arcname="predictions")
    return archive


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "www"
    folder.mkdir()
    _tarball(_log_dir(tmp_path / "src"), folder / "predictions.tar.gz")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _segment(log: Path) -> bytes:
    return (log / "credit-risk" / "segment-0001.sqlite").read_bytes()


def test_https_archive(served: str, tmp_path: Path) -> None:
    log = fetch_prediction_log(f"{served}/predictions.tar.gz", tmp_path / "got")
    assert _segment(log).startswith(b"SQLite format 3")
    with pytest.raises(DataError, match="cannot download"):
        fetch_prediction_log(f"{served}/missing.tar.gz", tmp_path / "none")


def test_release_asset(tmp_path: Path) -> None:
    forge = LocalForge(tmp_path / "forge")
    release = forge.create_release("predictions")
    forge.upload_release_asset(release.id, _tarball(_log_dir(tmp_path / "src"), tmp_path / "log.tgz"))
    log = fetch_prediction_log("release:predictions/log.tgz", tmp_path / "got", forge=forge)
    assert _segment(log).startswith(b"SQLite format 3")
    with pytest.raises(DataError, match="release:TAG/ASSET"):
        fetch_prediction_log("release:predictions", tmp_path / "x", forge=forge)


def test_fsspec_directory_and_local_directory(tmp_path: Path) -> None:
    source = _log_dir(tmp_path / "bucket")
    log = fetch_prediction_log(source.as_uri() + "/", tmp_path / "got")
    assert _segment(log).startswith(b"SQLite format 3")
    assert fetch_prediction_log(str(source), tmp_path / "unused") == source


def test_archives_cannot_escape_and_nothing_configured_says_what_to_set(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as bundle:
        bundle.writestr("../../outside.txt", "x")
    with pytest.raises(DataError, match="refusing"):
        fetch_prediction_log(str(evil), tmp_path / "got")
    evil_tar = tmp_path / "evil.tar.gz"
    with tarfile.open(evil_tar, "w:gz") as bundle:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        bundle.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="refusing"):
        fetch_prediction_log(str(evil_tar), tmp_path / "got2")
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(DataError) as error:
        fetch_prediction_log("", tmp_path / "got3")
    assert str(error.value) == NOT_CONFIGURED and "MLOPS_PREDICTION_LOG" in NOT_CONFIGURED
