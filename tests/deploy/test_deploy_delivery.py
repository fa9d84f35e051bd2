"""Model delivery for cluster pods: `serve --model-url` downloads the release asset from a real
HTTP server on 127.0.0.1, verifies its SHA-256 and refuses a mismatch (nothing left behind); a
private asset needs the token from the environment. An ONNX version (model.onnx + signature.json +
SHA256SUMS) is delivered whole, checked against its SHA256SUMS, and answers OIP v2 infer from a real
`mlops-bot serve` process."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_bot.checksums import SUMS_NAME, render_sums, sha256_file
from mlops_bot.cli import main
from mlops_bot.deploy.delivery import fetch_model
from mlops_bot.errors import MlopsError


def serve_folders(folders: dict[str, Path]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A release-asset host on 127.0.0.1: GET /PREFIX/NAME answers folders[PREFIX]/NAME (404 when
    absent); /private/... needs the bearer token; /redirect/NAME redirects to /public/NAME."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix, _, name = self.path.strip("/").partition("/")
            if prefix == "private" and self.headers.get("Authorization") != "Bearer s3cret":
                self.send_response(404)
                self.end_headers()
                return
            if prefix == "redirect":
                self.send_response(302)
                self.send_header("Location", f"/public/{name}")
                self.end_headers()
                return
            file = folders[prefix] / name if prefix in folders else None
            if file is None or not file.is_file():
                self.send_response(404)
                self.end_headers()
                return
            payload = file.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def asset_server(model_dirs: dict[str, Path]) -> Iterator[str]:
    folder = model_dirs["v1.1.0"]
    server, url = serve_folders({"public": folder, "private": folder})
    yield url
    server.shutdown()


def test_download_is_verified(asset_server: str, model_dirs: dict[str, Path], tmp_path: Path) -> None:
    digest = sha256_file(model_dirs["v1.1.0"] / "model.skops")
    out = fetch_model(f"{asset_server}/redirect/model.skops", digest, tmp_path / "ok")
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


def _onnx_release(folder: Path) -> str:
    """A registered ONNX version's release assets: model.onnx, signature.json (read off the graph),
    a report and SHA256SUMS listing all three; returns the model's digest."""
    from deploy.test_deploy_onnx import price_graph
    from mlops_bot.model_signature import SIGNATURE_FILE, signature_of
    from mlops_bot.onnx_model import load_onnx

    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(price_graph())
    (folder / SIGNATURE_FILE).write_text(signature_of(load_onnx(price_graph(), "model.onnx")).to_json())
    (folder / "report.json").write_text('{"metrics": {}}')
    (folder / SUMS_NAME).write_text(render_sums({name: sha256_file(folder / name) for name in
                                                 ("model.onnx", SIGNATURE_FILE, "report.json")}))
    return sha256_file(folder / "model.onnx")


def test_an_onnx_version_is_delivered_with_its_signature_and_served_over_oip(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    release = tmp_path / "release"
    digest = _onnx_release(release)
    tampered = tmp_path / "tampered"
    shutil.copytree(release, tampered)
    (tampered / "signature.json").write_text((release / "signature.json").read_text().replace("area", "size"))
    server, assets = serve_folders({"public": release, "tampered": tampered})
    try:
        with pytest.raises(MlopsError, match=r"signature.json has SHA-256 .* refusing to serve it"):
            fetch_model(f"{assets}/tampered/model.onnx", digest, tmp_path / "refused")
        assert list((tmp_path / "refused").iterdir()) == []
        with pytest.raises(MlopsError, match=r"got 'model\.pkl'"):
            fetch_model(f"{assets}/public/model.pkl", digest, tmp_path / "x")

        from kube_cluster.prometheus_server import _stop, _wait, free_port

        port = free_port()
        log = tmp_path / "serve.log"
        served = tmp_path / "pod-models"
        process = subprocess.Popen(
            [sys.executable, "-m", "mlops_bot", "serve", "prices", "--port", str(port), "--version", "v1.0.0",
             "--model-url", f"{assets}/public/model.onnx", "--model-sha256", digest,
             "--model-dir", str(served)],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(f"{base}/v2/health/ready", process, log, timeout=180)
            assert sorted(p.name for p in served.iterdir()) == sorted(p.name for p in release.iterdir())
            metadata = httpx.get(f"{base}/v2/models/prices", trust_env=False, timeout=30).json()
            assert metadata["platform"] == "onnx"
            assert [i["name"] for i in metadata["inputs"]] == ["area", "rooms"]
            body = {"inputs": [{"name": "area", "datatype": "FP64", "shape": [2], "data": [50.0, 120.0]},
                               {"name": "rooms", "datatype": "INT64", "shape": [2], "data": [2, 5]}]}
            answer = httpx.post(f"{base}/v2/models/prices/infer", json=body, trust_env=False, timeout=30)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model_version"] == "v1.0.0"
            assert answer.json()["outputs"][0]["data"] == [60_000.0, 145_000.0]
        finally:
            _stop(process)
    finally:
        server.shutdown()


def test_a_release_whose_sums_disagree_with_the_pinned_model_is_refused(tmp_path: Path) -> None:
    release = tmp_path / "release"
    digest = _onnx_release(release)
    (release / SUMS_NAME).write_text(render_sums({"model.onnx": "0" * 64}))
    server, assets = serve_folders({"public": release})
    try:
        with pytest.raises(MlopsError, match=r"SHA256SUMS does not list model.onnx with SHA-256"):
            fetch_model(f"{assets}/public/model.onnx", digest, tmp_path / "out")
        assert list((tmp_path / "out").iterdir()) == []
    finally:
        server.shutdown()


def test_the_default_storage_uri_names_the_versions_own_model_file() -> None:
    from mlops_bot.cli.deploy_cluster import storage_uri
    from mlops_bot.config.rollout import RolloutKServe

    template = RolloutKServe().storage_uri
    onnx_uri = storage_uri(template, model="prices", version="v1.0.0", repository="acme/house",
                           file="model.onnx")
    assert onnx_uri == "https://github.com/acme/house/releases/download/prices%40v1.0.0/model.onnx"
    assert storage_uri(template, model="credit", version="v2.0.0", repository="acme/house",
                       file="model.skops").endswith(
        "/credit%40v2.0.0/model.skops")
