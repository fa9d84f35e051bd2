"""Model delivery for servers that run away from the registry (a KServe or Argo pod): fetch the
version's release assets over HTTPS at start, verify them, and only then hand the directory to the
server. The URL names the version's model asset (`model.skops` or `model.onnx`, one of
`MODEL_FILE_NAMES`); its SHA-256 must equal the digest the deploy recorded. The release's
`SHA256SUMS` beside it (same URL folder) is fetched too, must list the model with that digest, and
every other file it lists (`signature.json`, the report, ...) is downloaded and checked against it,
so the folder the server loads is the one `Registry.download` leaves locally. A release without
SHA256SUMS (a plain file host) serves the pinned model alone. A mismatch or a failed download stops
the server with one line (the pod crash-loops, the revision never gets ready, the rollout aborts at
its deadline) instead of serving an unverified file. For private repositories the token comes from
the environment (`MLOPS_BOT_MODEL_TOKEN`, filled from a Kubernetes Secret), never the command line.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from mlops_bot.checksums import SUMS_NAME, parse_sums, sha256_file
from mlops_bot.errors import MlopsError
from mlops_bot.model_file import MODEL_FILE_NAMES


def model_asset_name(url: str) -> str:
    """The model file name a `--model-url` points at (its last path segment), or a one-line error."""
    if not url.startswith(("https://", "http://")):
        raise MlopsError(f"--model-url {url!r}: expected an http(s) URL of the version's model asset "
                         f"({' or '.join(MODEL_FILE_NAMES)})")
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    if name not in MODEL_FILE_NAMES:
        raise MlopsError(f"--model-url {url!r}: expected the URL of a release asset named "
                         f"{' or '.join(MODEL_FILE_NAMES)}, got {name!r}")
    return name


def _download(url: str, target: Path, headers: dict[str, str], timeout: float, *,
              missing_ok: bool = False) -> bool:
    """Stream `url` to `target`; False when `missing_ok` and the server answers 404."""
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout,
                          trust_env=True) as response:
            if response.status_code == 404 and missing_ok:
                return False
            if response.status_code != 200:
                raise MlopsError(f"model download from {url} answered {response.status_code}"
                                 + (" (private repository? set the token secret)" if response.status_code
                                    in (401, 403, 404) and "Authorization" not in headers else ""))
            with target.open("wb") as handle:
                for block in response.iter_bytes(1 << 20):
                    handle.write(block)
    except httpx.HTTPError as exc:
        raise MlopsError(f"model download from {url} failed: {exc}") from None
    return True


def fetch_model(url: str, sha256: str | None, directory: Path, *, token: str | None = None,
                timeout: float = 120.0) -> Path:
    """Download the model asset at `url` (plus the SHA256SUMS beside it and what it lists) into
    `directory` and verify them; returns the directory. Nothing lands there unless all match."""
    name = model_asset_name(url)
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise MlopsError(f"--model-sha256 {sha256!r}: expected 64 lowercase hex digits")
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / ".delivery.part"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    headers = {"Accept": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        _download(url, staging / name, headers, timeout)
        actual = sha256_file(staging / name)
        if sha256 is not None and actual != sha256:
            raise MlopsError(f"model from {url} has SHA-256 {actual}, expected {sha256}: "
                             "refusing to serve it")
        sums_url = urljoin(url, SUMS_NAME)
        if _download(sums_url, staging / SUMS_NAME, headers, timeout, missing_ok=True):
            listed = parse_sums((staging / SUMS_NAME).read_text(encoding="utf-8"), sums_url)
            if listed.get(name) != actual:
                raise MlopsError(f"{sums_url} does not list {name} with SHA-256 {actual}: "
                                 "refusing to serve it")
            for other, digest in sorted(listed.items()):
                if other == name:
                    continue
                if other in MODEL_FILE_NAMES:
                    raise MlopsError(f"{sums_url} lists both {name} and {other}; "
                                     "a version has one model file")
                other_url = urljoin(url, other)
                _download(other_url, staging / other, headers, timeout)
                if sha256_file(staging / other) != digest:
                    raise MlopsError(f"{other_url} has SHA-256 {sha256_file(staging / other)}, "
                                     f"expected {digest} ({sums_url}): refusing to serve it")
        for stale in MODEL_FILE_NAMES:  # a directory reused across versions keeps one model file
            (directory / stale).unlink(missing_ok=True)
        (directory / SUMS_NAME).unlink(missing_ok=True)
        for file in sorted(staging.iterdir(), key=lambda p: p.name == SUMS_NAME):  # SHA256SUMS last
            os.replace(file, directory / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory
