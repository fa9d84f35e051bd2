"""Model delivery for servers that run away from the registry (a KServe pod): fetch the version's
release asset over HTTPS at start, verify its SHA-256 against the digest the deploy recorded, and
only then hand the directory to the server. A mismatch or a failed download stops the server with
one line (the pod crash-loops, the revision never gets ready, the rollout aborts at its deadline)
instead of serving an unverified file. For private repositories the token comes from the
environment (`MLOPS_BOT_MODEL_TOKEN`, filled from a Kubernetes Secret), never from the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from mlops_bot.checksums import sha256_file
from mlops_bot.errors import MlopsError

MODEL_FILE = "model.skops"


def fetch_model(url: str, sha256: str | None, directory: Path, *, token: str | None = None,
                timeout: float = 120.0) -> Path:
    """Download `url` to `directory/model.skops` and verify it; returns the directory."""
    if not url.startswith(("https://", "http://")):
        raise MlopsError(f"--model-url {url!r}: expected an http(s) URL of the version's model.skops asset")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise MlopsError(f"--model-sha256 {sha256!r}: expected 64 lowercase hex digits")
    directory.mkdir(parents=True, exist_ok=True)
    partial = directory / f".{MODEL_FILE}.part"
    headers = {"Accept": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=timeout,
                          trust_env=True) as response:
            if response.status_code != 200:
                raise MlopsError(f"model download from {url} answered {response.status_code}"
                                 + (" (private repository? set the token secret)" if response.status_code
                                    in (401, 403, 404) and not token else ""))
            with partial.open("wb") as handle:
                for block in response.iter_bytes(1 << 20):
                    handle.write(block)
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise MlopsError(f"model download from {url} failed: {exc}") from None
    actual = sha256_file(partial)
    if sha256 is not None and actual != sha256:
        partial.unlink(missing_ok=True)
        raise MlopsError(f"model from {url} has SHA-256 {actual}, expected {sha256}: refusing to serve it")
    os.replace(partial, directory / MODEL_FILE)
    return directory
