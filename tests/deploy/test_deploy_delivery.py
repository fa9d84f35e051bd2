"""Model delivery for cluster pods: `serve --model-url` downloads the release asset from a real
HTTP server on 127.0.0.1, verifies its SHA-256 and refuses a mismatch (nothing left behind); a
private asset needs the token from the environment."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_bot.checksums import sha256_file
from mlops_bot.cli import main
from mlops_bot.deploy.delivery import fetch_model
from mlops_bot.errors import MlopsError


@pytest.fixture
def asset_server(model_dirs: dict[str, Path]) -> Iterator[str]:
    payload = (model_dirs["v1.1.0"] / "model.skops").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/private/") and self.headers.get("Authorization") != "Bearer s3cret":
                self.send_response(404)
                self.end_headers()
                return
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/public/model.skops")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_is_verified(asset_server: str, model_dirs: dict[str, Path], tmp_path: Path) -> None:
    digest = sha256_file(model_dirs["v1.1.0"] / "model.skops")
    out = fetch_model(f"{asset_server}/redirect", digest, tmp_path / "ok")
    assert sha256_file(out / "model.skops") == digest
    with pytest.raises(MlopsError, match=r"expected 0{64}: refusing to serve it"):
        fetch_model(f"{asset_server}/public/model.skops", "0" * 64, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
    with pytest.raises(MlopsError, match=r"answered 404 \(private repository"):
        fetch_model(f"{asset_server}/private/model.skops", digest, tmp_path / "private")
    fetch_model(f"{asset_server}/private/model.skops", digest, tmp_path / "private", token="s3cret")
    with pytest.raises(MlopsError, match="expected 64 lowercase hex"):
        fetch_model(f"{asset_server}/public/model.skops", "abc", tmp_path / "x")
    with pytest.raises(MlopsError, match="expected an http"):
        fetch_model("file:///etc/passwd", digest, tmp_path / "x")


def test_serve_refuses_a_model_whose_digest_differs(asset_server: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "credit", "--port", "0", "--model-url", f"{asset_server}/public/model.skops",
                 "--model-sha256", "1" * 64, "--model-dir", str(tmp_path / "m")])
    assert code == 2
    assert "refusing to serve it" in capsys.readouterr().err
