"""A small GitHub REST API on 127.0.0.1, for tests and `act` runs.

It answers the endpoints mlops-bot uses the way GitHub does: status codes (201/204/404/422),
`Link` pagination with per_page/page, `x-ratelimit-*` and `X-GitHub-Api-Version-Selected` headers,
JSON error bodies with `message` and `documentation_url`, release uploads through the release's
`upload_url`, 302 redirects for asset downloads, App JWTs and installation tokens. Every answer is
validated against GitHub's OpenAPI description by tests/forge/test_forge_emulator_openapi.py.

Faults are injected with `inject(path_regex, status=..., times=..., headers=..., delay=...)`.
The API is served both at the root and under `/api/v3` (GitHub Enterprise Server layout, used by
`url`); uploads live under `/api/uploads`, as on GHES.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from github_emulator import shapes

API_VERSION = "2022-11-28"
PERMISSIONS = ("none", "read", "triage", "write", "maintain", "admin")
ROLE_NAMES = {
    "none": "none",
    "read": "read",
    "triage": "triage",
    "write": "write",
    "maintain": "maintain",
    "admin": "admin",
}
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID."
)


class Reply(Exception):
    """Raised by a handler to answer with a status, a JSON body and extra headers."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.raw = raw


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template_regex(template: str) -> re.Pattern[str]:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("ref", "tag"):
            pattern = ".+"
        elif (name.endswith("_id") and name != "workflow_id") or name.endswith("_number"):
            pattern = r"\d+"
        else:
            pattern = "[^/]+"
        return f"(?P<{name}>{pattern})"

    return re.compile("^" + re.sub(r"\{(\w+)\}", repl, template) + "$")


Handler = Callable[["Call"], Any]


class Call:
    """One request as a handler sees it."""

    def __init__(
        self,
        emulator: Emulator,
        method: str,
        path: str,
        params: dict[str, str],
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        token: str | None,
        base: str,
    ) -> None:
        self.emulator = emulator
        self.method = method
        self.path = path
        self.params = params
        self.query = query
        self.headers = headers
        self.body = body
        self.token = token
        self.base = base  # e.g. http://127.0.0.1:PORT (no prefix)

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as error:
            raise Reply(400, shapes.basic_error("Problems parsing JSON", 400)) from error
        if not isinstance(data, dict):
            raise Reply(400, shapes.basic_error("Body should be a JSON object", 400))
        return data

    @property
    def repo(self) -> dict[str, Any]:
        full = f"{self.params['owner']}/{self.params['repo']}"
        repo = self.emulator.state["repos"].get(full)
        if repo is None:
            raise Reply(404, shapes.basic_error("Not Found", 404))
        return repo  # type: ignore[no-any-return]

    @property
    def full_name(self) -> str:
        return str(self.repo["full_name"])


class Emulator:
    """A GitHub REST API emulator on a free 127.0.0.1 port; use as a context manager."""

    def __init__(
        self,
        *,
        port: int = 0,
        state_file: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        app_id: int | None = None,
        app_public_key: str | bytes | None = None,
        app_slug: str = "mlops-bot",
    ) -> None:
        self.clock = clock
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.app_slug = app_slug
        self.state_file = Path(state_file) if state_file else None
        self.lock = threading.RLock()
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.rate_limit = 5000
        self.token_users: dict[str, str] = {}
        self.state: dict[str, Any] = {
            "repos": {},
            "issues": [],
            "pulls": [],
            "comments": [],
            "reactions": [],
            "check_runs": [],
            "statuses": [],
            "releases": [],
            "assets": [],
            "deployments": [],
            "deployment_statuses": [],
            "dispatches": [],
            "refs": [],
            "installations": {},
            "installation_tokens": {},
            "rate_used": {},
            "next_id": 1000,
        }
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        self._register_routes()
        emulator = self

        class _Handler(_RequestHandler):
            owner = emulator

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/api/v3"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="github-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        self._server.serve_forever()

    # ---------------------------------------------------------------------- test set-up API
    def next_id(self) -> int:
        with self.lock:
            value = int(self.state["next_id"])
            self.state["next_id"] = value + 1
            return value

    def add_repo(self, full_name: str, default_branch: str = "main") -> dict[str, Any]:
        with self.lock:
            repo = shapes.repository(self.root, full_name, self.next_id(), default_branch, _iso(self.clock()))
            repo["_permissions"] = {}
            repo["_next_number"] = 1
            self.state["repos"][full_name] = repo
            self._save()
            return repo

    def set_permission(self, full_name: str, user: str, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}")
        with self.lock:
            self.state["repos"][full_name]["_permissions"][user] = permission
            self._save()

    def _take_number(self, full_name: str) -> int:
        repo = self.state["repos"][full_name]
        number = int(repo["_next_number"])
        repo["_next_number"] = number + 1
        return number

    def add_issue(
        self,
        full_name: str,
        title: str,
        body: str = "",
        user: str = "octocat",
        labels: list[str] | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            issue = self._new_issue(full_name, self._take_number(full_name), title, body, user, labels or [])
            self._save()
            return issue

    def add_pull(
        self,
        full_name: str,
        number: int | None = None,
        *,
        head_sha: str = "0" * 40,
        head_ref: str = "feature",
        base_ref: str = "main",
        title: str = "A pull request",
        body: str = "",
        user: str = "octocat",
    ) -> dict[str, Any]:
        with self.lock:
            if number is None:
                number = self._take_number(full_name)
            else:
                repo = self.state["repos"][full_name]
                repo["_next_number"] = max(int(repo["_next_number"]), number + 1)
            pull = self._new_pull(full_name, number, title, body, user, head_ref, head_sha, base_ref)
            self._save()
            return pull

    def push_pull(self, full_name: str, number: int, head_sha: str) -> dict[str, Any]:
        """New commits on the PR's branch (GitHub's `synchronize`): the head moves, the number stays."""
        with self.lock:
            for pull in self.state["pulls"]:
                if pull["_repo"] == full_name and pull["number"] == number:
                    pull["head_sha"] = head_sha
                    self._save()
                    return pull
        raise KeyError(f"{full_name}#{number} is not a pull request")

    def add_comment(
        self, full_name: str, number: int, body: str, user: str = "octocat", user_type: str = "User"
    ) -> dict[str, Any]:
        """A comment made by someone else (a person typing `/promote`, say)."""
        with self.lock:
            comment = self._new_comment(full_name, number, body, user, user_type)
            self._save()
            return comment

    def set_ref(self, full_name: str, ref: str, sha: str) -> dict[str, Any]:
        """`ref` like 'refs/tags/NAME@v1.0.0' or 'tags/...'."""
        with self.lock:
            ref = ref if ref.startswith("refs/") else f"refs/{ref}"
            self.state["refs"] = [
                r for r in self.state["refs"] if not (r["_repo"] == full_name and r["ref"] == ref)
            ]
            row = self._ref_json(full_name, ref, sha)
            self.state["refs"].append(row)
            self._save()
            return row

    def add_installation(self, installation_id: int, repos: list[str]) -> None:
        with self.lock:
            self.state["installations"][str(installation_id)] = {"id": installation_id, "repos": list(repos)}
            self._save()

    def inject(
        self,
        path_regex: str,
        status: int | None = 502,
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        body: Any = None,
        method: str | None = None,
    ) -> None:
        """Answer the next `times` requests whose path matches with `status` (None: answer normally,
        only after `delay`). A 403 or 429 with Retry-After or x-ratelimit-remaining 0 gets GitHub's
        rate-limit message."""
        with self.lock:
            self.faults.append(
                {
                    "regex": re.compile(path_regex),
                    "status": status,
                    "times": times,
                    "headers": dict(headers or {}),
                    "delay": delay,
                    "body": body,
                    "method": method,
                }
            )

    def public_state(self) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.state, default=str))

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = json.dumps({"state": self.state, "requests": self.requests}, default=str, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.state_file.parent, prefix=".emulator.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.replace(tmp, self.state_file)

    # -------------------------------------------------------------------- object builders
    def _user_json(self, login: str) -> dict[str, Any]:
        return shapes.user(self.root, login, kind="Bot" if login.endswith("[bot]") else "User")

    def _actor(self, call: Call) -> str:
        token = call.token or ""
        if token in self.state["installation_tokens"]:
            return f"{self.app_slug}[bot]"
        return self.token_users.get(token, "github-actions[bot]")

    def _new_issue(
        self, full: str, number: int, title: str, body: str, user: str, labels: list[str]
    ) -> dict[str, Any]:
        now = _iso(self.clock())
        url = f"{self.url}/repos/{full}/issues/{number}"
        ident = self.next_id()
        issue = {
            "_repo": full,
            "id": ident,
            "node_id": shapes.node_id("I", ident),
            "number": number,
            "url": url,
            "repository_url": f"{self.url}/repos/{full}",
            "labels_url": f"{url}/labels{{/name}}",
            "comments_url": f"{url}/comments",
            "events_url": f"{url}/events",
            "html_url": f"{self.root}/{full}/issues/{number}",
            "title": title,
            "body": body,
            "user": self._user_json(user),
            "state": "open",
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "comments": 0,
            "closed_at": None,
            "created_at": now,
            "updated_at": now,
            "author_association": "OWNER",
            "labels": [self._label(full, name) for name in labels],
        }
        self.state["issues"].append(issue)
        return issue

    def _label(self, full: str, name: str) -> dict[str, Any]:
        return {
            "id": int(hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:7], 16),
            "node_id": shapes.node_id("L", name),
            "url": f"{self.url}/repos/{full}/labels/{name}",
            "name": name,
            "description": None,
            "color": "ededed",
            "default": False,
        }

    def _new_pull(
        self,
        full: str,
        number: int,
        title: str,
        body: str,
        user: str,
        head_ref: str,
        head_sha: str,
        base_ref: str,
    ) -> dict[str, Any]:
        issue = self._new_issue(full, number, title, body, user, [])
        pulls_url = f"{self.url}/repos/{full}/pulls/{number}"
        issue["pull_request"] = {
            "url": pulls_url,
            "html_url": f"{self.root}/{full}/pull/{number}",
            "diff_url": f"{self.root}/{full}/pull/{number}.diff",
            "patch_url": f"{self.root}/{full}/pull/{number}.patch",
            "merged_at": None,
        }
        ident = self.next_id()
        pull = {
            "_repo": full,
            "id": ident,
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "head_ref": head_ref,
            "head_sha": head_sha,
            "base_ref": base_ref,
            "user": user,
            "merged": False,
            "created_at": issue["created_at"],
            "updated_at": issue["updated_at"],
        }
        self.state["pulls"].append(pull)
        return pull

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        full = pull["_repo"]
        repo = {k: v for k, v in self.state["repos"][full].items() if not k.startswith("_")}
        number = pull["number"]
        url = f"{self.url}/repos/{full}/pulls/{number}"
        html = f"{self.root}/{full}/pull/{number}"
        issue_url = f"{self.url}/repos/{full}/issues/{number}"
        owner = full.split("/")[0]

        def side(ref: str, sha: str) -> dict[str, Any]:
            return {
                "label": f"{owner}:{ref}",
                "ref": ref,
                "sha": sha,
                "repo": repo,
                "user": shapes.user(self.root, owner, kind="Organization"),
            }

        def link(href: str) -> dict[str, str]:
            return {"href": href}

        return {
            "id": pull["id"],
            "node_id": shapes.node_id("PR", pull["id"]),
            "number": number,
            "url": url,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue_url,
            "commits_url": f"{url}/commits",
            "review_comments_url": f"{url}/comments",
            "review_comment_url": f"{self.url}/repos/{full}/pulls/comments{{/number}}",
            "comments_url": f"{issue_url}/comments",
            "statuses_url": f"{self.url}/repos/{full}/statuses/{pull['head_sha']}",
            "state": pull["state"],
            "locked": False,
            "title": pull["title"],
            "body": pull["body"],
            "user": self._user_json(pull["user"]),
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": pull["created_at"],
            "updated_at": pull["updated_at"],
            "closed_at": None if pull["state"] == "open" else pull["updated_at"],
            "merged_at": pull["updated_at"] if pull["merged"] else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": side(pull["head_ref"], pull["head_sha"]),
            "base": side(pull["base_ref"], "0" * 40),
            "_links": {
                "self": link(url),
                "html": link(html),
                "issue": link(issue_url),
                "comments": link(f"{issue_url}/comments"),
                "review_comments": link(f"{url}/comments"),
                "review_comment": link(f"{self.url}/repos/{full}/pulls/comments{{/number}}"),
                "commits": link(f"{url}/commits"),
                "statuses": link(f"{self.url}/repos/{full}/statuses/{pull['head_sha']}"),
            },
            "author_association": "OWNER",
            "auto_merge": None,
            "draft": False,
            "merged": pull["merged"],
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }

    def _new_comment(
        self, full: str, number: int, body: str, user: str, user_type: str = "User"
    ) -> dict[str, Any]:
        issue = self._find_issue(full, number)
        now = _iso(self.clock())
        ident = self.next_id()
        comment = {
            "_repo": full,
            "_issue_number": number,
            "id": ident,
            "node_id": shapes.node_id("IC", ident),
            "url": f"{self.url}/repos/{full}/issues/comments/{ident}",
            "html_url": f"{self.root}/{full}/issues/{number}#issuecomment-{ident}",
            "body": body,
            "user": shapes.user(
                self.root,
                user,
                kind=user_type if user_type != "User" or not user.endswith("[bot]") else "Bot",
            ),
            "created_at": now,
            "updated_at": now,
            "issue_url": issue["url"],
            "author_association": "OWNER",
        }
        issue["comments"] += 1
        self.state["comments"].append(comment)
        return comment

    def _comment_json(self, comment: dict[str, Any]) -> dict[str, Any]:
        out = _public(comment)
        contents = [r["content"] for r in self.state["reactions"] if r["_comment_id"] == comment["id"]]
        out["reactions"] = shapes.reaction_rollup(f"{comment['url']}/reactions", contents)
        return out

    def _find_issue(self, full: str, number: int) -> dict[str, Any]:
        for issue in self.state["issues"]:
            if issue["_repo"] == full and issue["number"] == number:
                return issue  # type: ignore[no-any-return]
        raise Reply(
            404,
            shapes.basic_error("Not Found", 404, "https://docs.github.com/rest/issues/issues#get-an-issue"),
        )

    def _ref_json(self, full: str, ref: str, sha: str) -> dict[str, Any]:
        return {
            "_repo": full,
            "ref": ref,
            "node_id": shapes.node_id("REF", f"{full}:{ref}"),
            "url": f"{self.url}/repos/{full}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.url}/repos/{full}/git/commits/{sha}"},
        }

    # ---------------------------------------------------------------------------- routing
    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def decorator(func: Handler) -> Handler:
            self._routes.append((method, template, _template_regex(template), func))
            return func

        return decorator

    def dispatch(self, method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
        for route_method, template, regex, func in self._routes:
            match = regex.match(path)
            if match and route_method == method:
                params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return template, params, func
        return None

    def _register_routes(self) -> None:
        from github_emulator import routes

        routes.register(self)


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_") or k == "_links"}


def paginate(call: Call, items: list[Any]) -> Reply:
    """One page of `items` with GitHub's `Link` header (per_page default 30, at most 100)."""
    try:
        per_page = max(1, min(100, int(call.query.get("per_page", "30"))))
        page = max(1, int(call.query.get("page", "1")))
    except ValueError as error:
        raise Reply(422, shapes.validation_error("Pagination", "per_page", "invalid")) from error
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    links = []

    def href(number: int) -> str:
        query = dict(call.query, page=str(number), per_page=str(per_page))
        return f"{call.base}{call.emulator_prefix}{call.path}?{urllib.parse.urlencode(query)}"  # type: ignore[attr-defined]

    if page > 1:
        links += [f'<{href(page - 1)}>; rel="prev"', f'<{href(1)}>; rel="first"']
    if page < last:
        links += [f'<{href(page + 1)}>; rel="next"', f'<{href(last)}>; rel="last"']
    return Reply(200, chunk, {"Link": ", ".join(links)} if links else {})


class _RequestHandler(BaseHTTPRequestHandler):
    owner: Emulator
    protocol_version = "HTTP/1.1"
    server_version = "GitHub.com"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `requests`
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        emu = self.owner
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        prefix = ""
        upload = False
        for candidate in ("/api/v3", "/api/uploads"):
            if path.startswith(candidate + "/") or path == candidate:
                prefix = candidate
                upload = candidate == "/api/uploads"
                path = path[len(candidate) :] or "/"
                break
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        auth = headers.get("authorization", "")
        token = auth.split(" ", 1)[1].strip() if " " in auth else None
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "query": query,
            "token": token,
            "upload": upload,
            "time": emu.clock(),
        }
        routed = emu.dispatch(method, path)
        entry["operation"] = routed[0] if routed else None
        try:
            self._check_fault(method, path)
            if routed is None:
                raise Reply(404, shapes.basic_error("Not Found", 404))
            _template, params, func = routed
            call = Call(
                emu,
                method,
                path,
                params,
                query,
                headers,
                body,
                token,
                f"http://{headers.get('host', f'127.0.0.1:{emu.port}')}",
            )
            call.emulator_prefix = prefix or "/api/v3"  # type: ignore[attr-defined]
            call.upload = upload  # type: ignore[attr-defined]
            with emu.lock:
                self._authenticate(call)
                result = func(call)
            reply = result if isinstance(result, Reply) else Reply(200, result)
        except Reply as answer:
            reply = answer
        self._send(reply, entry, token)

    def _check_fault(self, method: str, path: str) -> None:
        emu = self.owner
        with emu.lock:
            fault = None
            for candidate in emu.faults:
                if (
                    candidate["times"] > 0
                    and candidate["regex"].search(path)
                    and (candidate["method"] in (None, method))
                ):
                    candidate["times"] -= 1
                    fault = dict(candidate)
                    break
        if fault is None:
            return
        if fault["delay"]:
            time.sleep(fault["delay"])
        status = fault["status"]
        if status is None:
            return
        fault_headers = {k.lower(): v for k, v in fault["headers"].items()}
        body = fault["body"]
        if body is None:
            if status in (403, 429) and fault_headers.get("x-ratelimit-remaining") == "0":
                body = shapes.basic_error(
                    "API rate limit exceeded for installation.",
                    status,
                    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                )
            elif status in (403, 429) and "retry-after" in fault_headers:
                body = shapes.basic_error(
                    SECONDARY_MESSAGE,
                    status,
                    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
                )
            elif status >= 500:
                body = {"message": "Server Error"} if status != 502 else {"message": "Bad Gateway"}
            else:
                body = shapes.basic_error("Injected error", status)
        raise Reply(status, body, fault["headers"])

    def _authenticate(self, call: Call) -> None:
        emu = self.owner
        token = call.token
        if call.path.startswith("/app"):
            from github_emulator import routes

            routes.verify_app_jwt(emu, token)
            return
        if token is None:
            if call.method != "GET":
                raise Reply(401, shapes.basic_error("Requires authentication", 401))
            return
        issued = emu.state["installation_tokens"].get(token)
        if issued is not None and issued["expires_at_epoch"] <= emu.clock():
            raise Reply(401, shapes.basic_error("Bad credentials", 401))

    def _send(self, reply: Reply, entry: dict[str, Any], token: str | None) -> None:
        emu = self.owner
        now = emu.clock()
        with emu.lock:
            used = emu.state["rate_used"].get(token or "", 0) + 1
            emu.state["rate_used"][token or ""] = used
        headers = {
            "X-GitHub-Api-Version-Selected": API_VERSION,
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
            "x-ratelimit-limit": str(emu.rate_limit),
            "x-ratelimit-remaining": str(max(0, emu.rate_limit - used)),
            "x-ratelimit-reset": str(int(now) + 3600),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }
        headers.update(reply.headers)
        if reply.raw is not None:
            payload = reply.raw
            headers.setdefault("Content-Type", "application/octet-stream")
        elif reply.status == 204 or (reply.body is None and reply.status in (204, 302)):
            payload = b""
        else:
            body = reply.body
            body = (
                [_public(x) if isinstance(x, dict) else x for x in body]
                if isinstance(body, list)
                else (_public(body) if isinstance(body, dict) else body)
            )
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
            entry["response"] = body
        entry["status"] = reply.status
        entry["content_type"] = headers.get("Content-Type")
        with emu.lock:
            emu.requests.append(entry)
            if emu.state_file is not None:
                emu._save()
        self.send_response(reply.status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def asset_bytes(asset: dict[str, Any]) -> bytes:
    return base64.b64decode(asset["_content_b64"])
