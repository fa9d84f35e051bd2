"""A git smart-HTTP remote on 127.0.0.1 that authorises like github.com does for an App: basic
auth `x-access-token:<installation token>`, the token minted by the GitHub API emulator, not
expired on the emulator's clock, of an installation that covers the repository. The git protocol
itself is served by the real `git http-backend` (CGI). Every request is recorded with the token it
carried, so tests can tell which installation's token git sent."""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from github_emulator import Emulator


class GitHttpRemote:
    def __init__(self, root: Path, emulator: Emulator) -> None:
        self.root = root
        self.emulator = emulator
        self.requests: list[dict[str, Any]] = []
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_GET(self) -> None:
                remote.serve(self)

            def do_POST(self) -> None:
                remote.serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> GitHttpRemote:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _token(self, header: str | None) -> str | None:
        if not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return password if user == "x-access-token" else None

    def _allowed(self, token: str | None, repo: str) -> bool:
        with self.emulator.lock:
            issued = self.emulator.state["installation_tokens"].get(token or "")
            if issued is None or issued["expires_at_epoch"] <= self.emulator.clock():
                return False
            installation = self.emulator.state["installations"].get(str(issued["installation_id"]))
            return installation is not None and repo in installation["repos"]

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        repo = "/".join(parts.path.strip("/").split("/")[:2]).removesuffix(".git")
        token = self._token(request.headers.get("Authorization"))
        allowed = self._allowed(token, repo)
        self.requests.append({"path": parts.path, "repo": repo, "token": token, "allowed": allowed})
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if not allowed:  # github.com answers a private repository's stranger like this
            request.send_response(401)
            request.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.command,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
            # like github.com: partial clones, and the lazy blob fetches they make later
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "uploadpack.allowFilter",
            "GIT_CONFIG_VALUE_0": "true",
            "GIT_CONFIG_KEY_1": "uploadpack.allowAnySHA1InWant",
            "GIT_CONFIG_VALUE_1": "true",
        }
        if request.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = request.headers["Content-Encoding"]
        result = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = result.stdout.partition(b"\r\n\r\n")
        status = 200
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        request.send_response(status)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
