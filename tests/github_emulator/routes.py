"""The endpoints the emulator implements, each under the path template of GitHub's OpenAPI
description (so the validation test can find the operation's response schema)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import jwt

from github_emulator import shapes
from github_emulator.server import PERMISSIONS, ROLE_NAMES, Call, Reply, _iso, _public, asset_bytes, paginate

if TYPE_CHECKING:
    from github_emulator.server import Emulator

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")
CHECK_STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required")
COMMIT_STATES = ("error", "failure", "pending", "success")
DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


def verify_app_jwt(emu: Emulator, token: str | None) -> dict[str, Any]:
    """GitHub's checks on an App JWT: RS256, signed by the app's key, iss = app id, iat in the past,
    exp at most 10 minutes after iat and not passed."""

    def refuse(message: str) -> Reply:
        return Reply(401, shapes.basic_error(message, 401))

    if not token or emu.app_public_key is None:
        raise refuse("A JSON web token could not be decoded")
    try:
        claims = jwt.decode(
            token,
            emu.app_public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp", "iss"]},
        )
    except jwt.PyJWTError as error:
        raise refuse("A JSON web token could not be decoded") from error
    now = emu.clock()
    if str(claims["iss"]) != str(emu.app_id):
        raise refuse("'Issuer' claim ('iss') must be an Integer")
    if int(claims["exp"]) - int(claims["iat"]) > 600 or int(claims["exp"]) > now + 600:
        raise refuse("'Expiration time' claim ('exp') is too far in the future")
    if int(claims["exp"]) <= now:
        raise refuse(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time "
            "at which the assertion expires"
        )
    if int(claims["iat"]) > now + 60:
        raise refuse(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
        )
    return claims


def _require(data: dict[str, Any], resource: str, *fields: str) -> None:
    for field in fields:
        if data.get(field) in (None, ""):
            raise Reply(422, shapes.validation_error(resource, field))


def _enum(data: dict[str, Any], resource: str, field: str, allowed: tuple[str, ...]) -> None:
    if field in data and data[field] is not None and data[field] not in allowed:
        raise Reply(
            422, shapes.validation_error(resource, field, "invalid", f"{field} is not included in the list")
        )


def register(emu: Emulator) -> None:
    route = emu.route

    # ------------------------------------------------------------------------- repository
    @route("GET", "/repos/{owner}/{repo}")
    def get_repo(call: Call) -> Any:
        return call.repo

    # ---------------------------------------------------------------------------- comments
    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def list_comments(call: Call) -> Any:
        number = int(call.params["issue_number"])
        emu._find_issue(call.full_name, number)
        rows = [
            emu._comment_json(c)
            for c in emu.state["comments"]
            if c["_repo"] == call.full_name and c["_issue_number"] == number
        ]
        return paginate(call, rows)

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments")
    def create_comment(call: Call) -> Any:
        data = call.json()
        _require(data, "IssueComment", "body")
        comment = emu._new_comment(
            call.full_name, int(call.params["issue_number"]), str(data["body"]), emu._actor(call)
        )
        return Reply(201, emu._comment_json(comment), {"Location": comment["url"]})

    def find_comment(call: Call) -> dict[str, Any]:
        ident = int(call.params["comment_id"])
        for comment in emu.state["comments"]:
            if comment["_repo"] == call.full_name and comment["id"] == ident:
                return comment  # type: ignore[no-any-return]
        raise Reply(404, shapes.basic_error("Not Found", 404))

    @route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def get_comment(call: Call) -> Any:
        return emu._comment_json(find_comment(call))

    @route("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}")
    def update_comment(call: Call) -> Any:
        comment = find_comment(call)
        data = call.json()
        _require(data, "IssueComment", "body")
        comment["body"] = str(data["body"])
        comment["updated_at"] = _iso(emu.clock())
        return emu._comment_json(comment)

    @route("GET", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
    def list_reactions(call: Call) -> Any:
        comment = find_comment(call)
        rows = [r for r in emu.state["reactions"] if r["_comment_id"] == comment["id"]]
        if "content" in call.query:
            rows = [r for r in rows if r["content"] == call.query["content"]]
        return paginate(call, rows)

    @route("POST", "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions")
    def create_reaction(call: Call) -> Any:
        comment = find_comment(call)
        data = call.json()
        _require(data, "Reaction", "content")
        _enum(data, "Reaction", "content", REACTIONS)
        actor = emu._actor(call)
        for row in emu.state["reactions"]:  # GitHub answers 200 with the existing reaction
            if (
                row["_comment_id"] == comment["id"]
                and row["content"] == data["content"]
                and (row["user"]["login"] == actor)
            ):
                return Reply(200, row)
        ident = emu.next_id()
        row = {
            "_comment_id": comment["id"],
            "id": ident,
            "node_id": shapes.node_id("RE", ident),
            "user": emu._user_json(actor),
            "content": data["content"],
            "created_at": _iso(emu.clock()),
        }
        emu.state["reactions"].append(row)
        return Reply(201, row)

    # ------------------------------------------------------------------------------ issues
    def issue_json(issue: dict[str, Any]) -> dict[str, Any]:
        return _public(issue)

    @route("POST", "/repos/{owner}/{repo}/issues")
    def create_issue(call: Call) -> Any:
        data = call.json()
        _require(data, "Issue", "title")
        labels = [str(x if isinstance(x, str) else x.get("name")) for x in data.get("labels") or []]
        issue = emu._new_issue(
            call.full_name,
            emu._take_number(call.full_name),
            str(data["title"]),
            str(data.get("body") or ""),
            emu._actor(call),
            labels,
        )
        return Reply(201, issue_json(issue), {"Location": issue["url"]})

    @route("GET", "/repos/{owner}/{repo}/issues")
    def list_issues(call: Call) -> Any:
        state = call.query.get("state", "open")
        labels = [x for x in call.query.get("labels", "").split(",") if x]
        rows = [
            i
            for i in emu.state["issues"]
            if i["_repo"] == call.full_name
            and (state == "all" or i["state"] == state)
            and set(labels) <= {label["name"] for label in i["labels"]}
        ]
        rows.sort(key=lambda i: -int(i["number"]))
        return paginate(call, [issue_json(i) for i in rows])

    @route("GET", "/repos/{owner}/{repo}/issues/{issue_number}")
    def get_issue(call: Call) -> Any:
        return issue_json(emu._find_issue(call.full_name, int(call.params["issue_number"])))

    @route("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}")
    def update_issue(call: Call) -> Any:
        issue = emu._find_issue(call.full_name, int(call.params["issue_number"]))
        data = call.json()
        _enum(data, "Issue", "state", ("open", "closed"))
        for key in ("title", "body", "state"):
            if key in data and data[key] is not None:
                issue[key] = data[key]
        if "labels" in data:
            issue["labels"] = [emu._label(call.full_name, str(x)) for x in data["labels"] or []]
        issue["closed_at"] = _iso(emu.clock()) if issue["state"] == "closed" else None
        issue["updated_at"] = _iso(emu.clock())
        return issue_json(issue)

    @route("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels")
    def add_labels(call: Call) -> Any:
        issue = emu._find_issue(call.full_name, int(call.params["issue_number"]))
        data = call.json()
        _require(data, "Issue", "labels")
        names = [label["name"] for label in issue["labels"]]
        for name in data["labels"]:
            label = str(name if isinstance(name, str) else name.get("name"))
            if label not in names:
                issue["labels"].append(emu._label(call.full_name, label))
                names.append(label)
        issue["updated_at"] = _iso(emu.clock())
        return [dict(label) for label in issue["labels"]]

    # ------------------------------------------------------------------------------- pulls
    def find_pull(call: Call, number: int) -> dict[str, Any]:
        for pull in emu.state["pulls"]:
            if pull["_repo"] == call.full_name and pull["number"] == number:
                return pull  # type: ignore[no-any-return]
        raise Reply(404, shapes.basic_error("Not Found", 404))

    @route("POST", "/repos/{owner}/{repo}/pulls")
    def create_pull(call: Call) -> Any:
        data = call.json()
        _require(data, "PullRequest", "head", "base")
        if any(
            p["_repo"] == call.full_name and p["head_ref"] == data["head"] and p["state"] == "open"
            for p in emu.state["pulls"]
        ):
            raise Reply(
                422,
                shapes.validation_error(
                    "PullRequest", "head", "custom", f"A pull request already exists for {data['head']}."
                ),
            )
        sha = hashlib.sha1(str(data["head"]).encode(), usedforsecurity=False).hexdigest()
        pull = emu._new_pull(
            call.full_name,
            emu._take_number(call.full_name),
            str(data.get("title") or ""),
            str(data.get("body") or ""),
            emu._actor(call),
            str(data["head"]),
            sha,
            str(data["base"]),
        )
        body = emu._pull_json(pull)
        return Reply(201, body, {"Location": body["url"]})

    @route("GET", "/repos/{owner}/{repo}/pulls")
    def list_pulls(call: Call) -> Any:
        state = call.query.get("state", "open")
        rows = [
            p
            for p in emu.state["pulls"]
            if p["_repo"] == call.full_name and (state == "all" or p["state"] == state)
        ]
        rows.sort(key=lambda p: -int(p["number"]))
        return paginate(call, [emu._pull_json(p) for p in rows])

    @route("GET", "/repos/{owner}/{repo}/pulls/{pull_number}")
    def get_pull(call: Call) -> Any:
        return emu._pull_json(find_pull(call, int(call.params["pull_number"])))

    # ------------------------------------------------------------------------ check runs
    def check_json(run: dict[str, Any]) -> dict[str, Any]:
        out = _public(run)
        out["output"] = dict(run["output"], annotations_count=len(run["_annotations"]))
        return out

    def add_annotations(run: dict[str, Any], output: dict[str, Any]) -> None:
        annotations = output.get("annotations") or []
        if len(annotations) > 50:
            raise Reply(
                422,
                shapes.validation_error(
                    "CheckRun", "annotations", "invalid", "Only 50 annotations are allowed per request"
                ),
            )
        for note in annotations:
            _require(note, "CheckRun", "path", "start_line", "end_line", "annotation_level", "message")
            _enum(note, "CheckRun", "annotation_level", ("notice", "warning", "failure"))
        run["_annotations"].extend(annotations)

    def apply_check(run: dict[str, Any], data: dict[str, Any]) -> None:
        _enum(data, "CheckRun", "status", CHECK_STATUSES)
        _enum(data, "CheckRun", "conclusion", CONCLUSIONS)
        for key in ("name", "status", "conclusion", "details_url", "external_id"):
            if data.get(key) is not None:
                run[key] = data[key]
        if data.get("conclusion") is not None:
            run["status"] = "completed"
        if run["status"] == "completed":
            if run["conclusion"] is None:
                raise Reply(422, shapes.validation_error("CheckRun", "conclusion", "missing_field"))
            run["completed_at"] = run["completed_at"] or _iso(emu.clock())
        output = data.get("output")
        if output:
            _require(output, "CheckRun", "title", "summary")
            for key in ("title", "summary", "text"):
                if key in output:
                    run["output"][key] = output[key]
            add_annotations(run, output)

    @route("POST", "/repos/{owner}/{repo}/check-runs")
    def create_check_run(call: Call) -> Any:
        data = call.json()
        _require(data, "CheckRun", "name", "head_sha")
        ident = emu.next_id()
        url = f"{emu.url}/repos/{call.full_name}/check-runs/{ident}"
        run: dict[str, Any] = {
            "_repo": call.full_name,
            "_annotations": [],
            "id": ident,
            "node_id": shapes.node_id("CR", ident),
            "head_sha": data["head_sha"],
            "name": data["name"],
            "external_id": data.get("external_id", ""),
            "url": url,
            "html_url": f"{emu.root}/{call.full_name}/runs/{ident}",
            "details_url": data.get("details_url") or f"{emu.root}/{call.full_name}/runs/{ident}",
            "status": "queued",
            "conclusion": None,
            "started_at": _iso(emu.clock()),
            "completed_at": None,
            "output": {
                "title": None,
                "summary": None,
                "text": None,
                "annotations_count": 0,
                "annotations_url": f"{url}/annotations",
            },
            "check_suite": {"id": emu.next_id()},
            "app": None,
            "pull_requests": [],
        }
        apply_check(run, data)
        emu.state["check_runs"].append(run)
        return Reply(201, check_json(run))

    def find_check(call: Call) -> dict[str, Any]:
        ident = int(call.params["check_run_id"])
        for run in emu.state["check_runs"]:
            if run["_repo"] == call.full_name and run["id"] == ident:
                return run  # type: ignore[no-any-return]
        raise Reply(404, shapes.basic_error("Not Found", 404))

    @route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
    def get_check_run(call: Call) -> Any:
        return check_json(find_check(call))

    @route("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}")
    def update_check_run(call: Call) -> Any:
        run = find_check(call)
        apply_check(run, call.json())
        return check_json(run)

    @route("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations")
    def list_annotations(call: Call) -> Any:
        run = find_check(call)
        rows = [
            dict(
                {
                    "title": None,
                    "raw_details": None,
                    "start_column": None,
                    "end_column": None,
                    "blob_href": f"{emu.root}/{call.full_name}/blob/{run['head_sha']}/{a['path']}",
                },
                **a,
            )
            for a in run["_annotations"]
        ]
        return paginate(call, rows)

    @route("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs")
    def list_check_runs(call: Call) -> Any:
        ref = call.params["ref"]
        rows = [
            check_json(r)
            for r in emu.state["check_runs"]
            if r["_repo"] == call.full_name and r["head_sha"] == ref
        ]
        page = paginate(call, rows)
        page.body = {"total_count": len(rows), "check_runs": page.body}
        return page

    # --------------------------------------------------------------------------- statuses
    @route("POST", "/repos/{owner}/{repo}/statuses/{sha}")
    def create_status(call: Call) -> Any:
        data = call.json()
        _require(data, "Status", "state")
        _enum(data, "Status", "state", COMMIT_STATES)
        if len(str(data.get("description") or "")) > 140:
            raise Reply(
                422,
                shapes.validation_error(
                    "Status", "description", "custom", "description is too long (maximum is 140 characters)"
                ),
            )
        ident = emu.next_id()
        now = _iso(emu.clock())
        row = {
            "_repo": call.full_name,
            "_sha": call.params["sha"],
            "id": ident,
            "node_id": shapes.node_id("ST", ident),
            "url": f"{emu.url}/repos/{call.full_name}/statuses/{call.params['sha']}",
            "avatar_url": None,
            "state": data["state"],
            "description": data.get("description"),
            "target_url": data.get("target_url"),
            "context": data.get("context") or "default",
            "created_at": now,
            "updated_at": now,
            "creator": emu._user_json(emu._actor(call)),
        }
        emu.state["statuses"].append(row)
        return Reply(201, row)

    @route("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses")
    def list_statuses(call: Call) -> Any:
        rows = [
            r
            for r in reversed(emu.state["statuses"])
            if r["_repo"] == call.full_name and r["_sha"] == call.params["ref"]
        ]
        return paginate(call, rows)

    # --------------------------------------------------------------------------- releases
    def release_json(release: dict[str, Any]) -> dict[str, Any]:
        out = _public(release)
        out["assets"] = [_public(a) for a in emu.state["assets"] if a["_release_id"] == release["id"]]
        return out

    def find_release(call: Call) -> dict[str, Any]:
        ident = int(call.params["release_id"])
        for release in emu.state["releases"]:
            if release["_repo"] == call.full_name and release["id"] == ident:
                return release  # type: ignore[no-any-return]
        raise Reply(404, shapes.basic_error("Not Found", 404))

    def published_with_tag(full_name: str, tag: str, other_than: int | None = None) -> bool:
        return any(r["_repo"] == full_name and r["tag_name"] == tag and not r["draft"]
                   and r["id"] != other_than for r in emu.state["releases"])

    @route("POST", "/repos/{owner}/{repo}/releases")
    def create_release(call: Call) -> Any:
        data = call.json()
        _require(data, "Release", "tag_name")
        draft = bool(data.get("draft", False))
        if not draft and published_with_tag(call.full_name, data["tag_name"]):
            raise Reply(422, shapes.validation_error("Release", "tag_name", "already_exists"))
        ident = emu.next_id()
        now = _iso(emu.clock())
        full = call.full_name
        url = f"{emu.url}/repos/{full}/releases/{ident}"
        release = {
            "_repo": full,
            "id": ident,
            "node_id": shapes.node_id("RL", ident),
            "url": url,
            "html_url": f"{emu.root}/{full}/releases/tag/{data['tag_name']}",
            "assets_url": f"{url}/assets",
            "upload_url": f"{emu.root}/api/uploads/repos/{full}/releases/{ident}/assets{{?name,label}}",
            "tarball_url": f"{emu.url}/repos/{full}/tarball/{data['tag_name']}",
            "zipball_url": f"{emu.url}/repos/{full}/zipball/{data['tag_name']}",
            "tag_name": data["tag_name"],
            "target_commitish": data.get("target_commitish") or "main",
            "name": data.get("name") or data["tag_name"],
            "body": data.get("body") or "",
            "draft": draft,
            "prerelease": bool(data.get("prerelease", False)),
            "created_at": now,
            "published_at": None if draft else now,  # GitHub: null until published
            "author": emu._user_json(emu._actor(call)),
        }
        emu.state["releases"].append(release)
        return Reply(201, release_json(release), {"Location": url})

    @route("GET", "/repos/{owner}/{repo}/releases")
    def list_releases(call: Call) -> Any:
        rows = [release_json(r) for r in reversed(emu.state["releases"]) if r["_repo"] == call.full_name]
        return paginate(call, rows)

    @route("GET", "/repos/{owner}/{repo}/releases/tags/{tag}")
    def get_release_by_tag(call: Call) -> Any:
        for release in emu.state["releases"]:
            # GitHub does not find drafts by tag name (they have no tag yet)
            if (release["_repo"] == call.full_name and release["tag_name"] == call.params["tag"]
                    and not release["draft"]):
                return release_json(release)
        raise Reply(
            404,
            shapes.basic_error(
                "Not Found", 404, "https://docs.github.com/rest/releases/releases#get-a-release-by-tag-name"
            ),
        )

    @route("GET", "/repos/{owner}/{repo}/releases/{release_id}")
    def get_release(call: Call) -> Any:
        return release_json(find_release(call))

    @route("PATCH", "/repos/{owner}/{repo}/releases/{release_id}")
    def update_release(call: Call) -> Any:
        release = find_release(call)
        data = call.json()
        tag = data.get("tag_name", release["tag_name"])
        draft = bool(data.get("draft", release["draft"]))
        if not draft and published_with_tag(call.full_name, tag, other_than=release["id"]):
            raise Reply(422, shapes.validation_error("Release", "tag_name", "already_exists"))
        full = call.full_name
        release.update({key: data[key] for key in ("name", "body", "prerelease") if key in data})
        release["tag_name"] = tag
        release["html_url"] = f"{emu.root}/{full}/releases/tag/{tag}"
        release["tarball_url"] = f"{emu.url}/repos/{full}/tarball/{tag}"
        release["zipball_url"] = f"{emu.url}/repos/{full}/zipball/{tag}"
        if release["draft"] and not draft:
            release["published_at"] = _iso(emu.clock())
        release["draft"] = draft
        return release_json(release)

    @route("DELETE", "/repos/{owner}/{repo}/releases/{release_id}")
    def delete_release(call: Call) -> Any:
        release = find_release(call)
        emu.state["releases"].remove(release)
        emu.state["assets"] = [a for a in emu.state["assets"] if a["_release_id"] != release["id"]]
        return Reply(204, None)

    @route("GET", "/repos/{owner}/{repo}/releases/{release_id}/assets")
    def list_assets(call: Call) -> Any:
        release = find_release(call)
        return paginate(call, [_public(a) for a in emu.state["assets"] if a["_release_id"] == release["id"]])

    @route("POST", "/repos/{owner}/{repo}/releases/{release_id}/assets")
    def upload_asset(call: Call) -> Any:
        if not getattr(call, "upload", False):  # only the upload_url host accepts uploads
            raise Reply(404, shapes.basic_error("Not Found", 404))
        release = find_release(call)
        name = call.query.get("name", "")
        if not name:
            raise Reply(422, shapes.validation_error("ReleaseAsset", "name"))
        if any(a["_release_id"] == release["id"] and a["name"] == name for a in emu.state["assets"]):
            raise Reply(422, shapes.validation_error("ReleaseAsset", "name", "already_exists"))
        ident = emu.next_id()
        now = _iso(emu.clock())
        full = call.full_name
        asset = {
            "_release_id": release["id"],
            "_repo": full,
            "_content_b64": base64.b64encode(call.body).decode(),
            "id": ident,
            "node_id": shapes.node_id("RA", ident),
            "url": f"{emu.url}/repos/{full}/releases/assets/{ident}",
            "browser_download_url": f"{emu.root}/{full}/releases/download/{release['tag_name']}/{name}",
            "name": name,
            "label": call.query.get("label") or None,
            "content_type": call.headers.get("content-type", "application/octet-stream"),
            "state": "uploaded",
            "size": len(call.body),
            "digest": "sha256:" + hashlib.sha256(call.body).hexdigest(),
            "download_count": 0,
            "created_at": now,
            "updated_at": now,
            "uploader": emu._user_json(emu._actor(call)),
        }
        emu.state["assets"].append(asset)
        return Reply(201, asset)

    @route("GET", "/repos/{owner}/{repo}/releases/assets/{asset_id}")
    def get_asset(call: Call) -> Any:
        ident = int(call.params["asset_id"])
        for asset in emu.state["assets"]:
            if asset["_repo"] == call.full_name and asset["id"] == ident:
                if call.headers.get("accept", "").startswith("application/octet-stream"):
                    asset["download_count"] += 1
                    return Reply(302, None, {"Location": f"{emu.url}/_downloads/{ident}"})
                return _public(asset)
        raise Reply(404, shapes.basic_error("Not Found", 404))

    @route("GET", "/_downloads/{asset_id}")
    def download(call: Call) -> Any:  # the signed storage URL GitHub redirects to
        ident = int(call.params["asset_id"])
        for asset in emu.state["assets"]:
            if asset["id"] == ident:
                return Reply(
                    200, raw=asset_bytes(asset), headers={"Content-Type": "application/octet-stream"}
                )
        raise Reply(404, shapes.basic_error("Not Found", 404))

    # ----------------------------------------------------------------------- git refs
    def find_ref(call: Call, ref: str) -> dict[str, Any] | None:
        for row in emu.state["refs"]:
            if row["_repo"] == call.full_name and row["ref"] == f"refs/{ref}":
                return row  # type: ignore[no-any-return]
        return None

    @route("GET", "/repos/{owner}/{repo}/git/ref/{ref}")
    def get_ref(call: Call) -> Any:
        row = find_ref(call, call.params["ref"])
        if row is None:
            raise Reply(
                404,
                shapes.basic_error("Not Found", 404, "https://docs.github.com/rest/git/refs#get-a-reference"),
            )
        return row

    @route("GET", "/repos/{owner}/{repo}/git/matching-refs/{ref}")
    def matching_refs(call: Call) -> Any:
        prefix = f"refs/{call.params['ref']}"
        return [r for r in emu.state["refs"] if r["_repo"] == call.full_name and r["ref"].startswith(prefix)]

    @route("POST", "/repos/{owner}/{repo}/git/refs")
    def create_ref(call: Call) -> Any:
        data = call.json()
        _require(data, "Reference", "ref", "sha")
        ref = str(data["ref"])
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise Reply(
                422,
                shapes.validation_error(
                    "Reference", "ref", "invalid", "Reference name must start with 'refs/'"
                ),
            )
        if find_ref(call, ref[len("refs/") :]) is not None:
            raise Reply(
                422, shapes.validation_error("Reference", "ref", "already_exists", "Reference already exists")
            )
        row = emu._ref_json(call.full_name, ref, str(data["sha"]))
        emu.state["refs"].append(row)
        return Reply(201, row, {"Location": row["url"]})

    # ------------------------------------------------------------------------ deployments
    def deployment_json(row: dict[str, Any]) -> dict[str, Any]:
        return _public(row)

    def find_deployment(call: Call) -> dict[str, Any]:
        ident = int(call.params["deployment_id"])
        for row in emu.state["deployments"]:
            if row["_repo"] == call.full_name and row["id"] == ident:
                return row  # type: ignore[no-any-return]
        raise Reply(404, shapes.basic_error("Not Found", 404))

    @route("POST", "/repos/{owner}/{repo}/deployments")
    def create_deployment(call: Call) -> Any:
        data = call.json()
        _require(data, "Deployment", "ref")
        ident = emu.next_id()
        now = _iso(emu.clock())
        full = call.full_name
        url = f"{emu.url}/repos/{full}/deployments/{ident}"
        ref = str(data["ref"])
        sha = next(
            (
                r["object"]["sha"]
                for r in emu.state["refs"]
                if r["_repo"] == full and r["ref"] in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref)
            ),
            None,
        ) or (ref if len(ref) == 40 else hashlib.sha1(ref.encode(), usedforsecurity=False).hexdigest())
        row = {
            "_repo": full,
            "id": ident,
            "node_id": shapes.node_id("DE", ident),
            "url": url,
            "sha": sha,
            "ref": ref,
            "task": data.get("task") or "deploy",
            "payload": data.get("payload") or {},
            "original_environment": data.get("environment") or "production",
            "environment": data.get("environment") or "production",
            "description": data.get("description"),
            "creator": emu._user_json(emu._actor(call)),
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{url}/statuses",
            "repository_url": f"{emu.url}/repos/{full}",
            "transient_environment": bool(data.get("transient_environment", False)),
            "production_environment": bool(
                data.get("production_environment", (data.get("environment") or "production") == "production")
            ),
        }
        emu.state["deployments"].append(row)
        return Reply(201, deployment_json(row))

    @route("GET", "/repos/{owner}/{repo}/deployments")
    def list_deployments(call: Call) -> Any:
        env = call.query.get("environment")
        rows = [
            deployment_json(r)
            for r in reversed(emu.state["deployments"])
            if r["_repo"] == call.full_name and (env is None or r["environment"] == env)
        ]
        return paginate(call, rows)

    @route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}")
    def get_deployment(call: Call) -> Any:
        return deployment_json(find_deployment(call))

    @route("POST", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
    def create_deployment_status(call: Call) -> Any:
        deployment = find_deployment(call)
        data = call.json()
        _require(data, "DeploymentStatus", "state")
        _enum(data, "DeploymentStatus", "state", DEPLOYMENT_STATES)
        if len(str(data.get("description") or "")) > 140:
            raise Reply(
                422,
                shapes.validation_error(
                    "DeploymentStatus",
                    "description",
                    "custom",
                    "description is too long (maximum is 140 characters)",
                ),
            )
        ident = emu.next_id()
        now = _iso(emu.clock())
        row = {
            "_deployment_id": deployment["id"],
            "id": ident,
            "node_id": shapes.node_id("DS", ident),
            "url": f"{deployment['url']}/statuses/{ident}",
            "state": data["state"],
            "creator": emu._user_json(emu._actor(call)),
            "description": data.get("description") or "",
            "environment": data.get("environment") or deployment["environment"],
            "target_url": data.get("target_url") or data.get("log_url") or "",
            "log_url": data.get("log_url") or data.get("target_url") or "",
            "environment_url": data.get("environment_url") or "",
            "created_at": now,
            "updated_at": now,
            "deployment_url": deployment["url"],
            "repository_url": deployment["repository_url"],
        }
        emu.state["deployment_statuses"].append(row)
        return Reply(201, row)

    @route("GET", "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses")
    def list_deployment_statuses(call: Call) -> Any:
        deployment = find_deployment(call)
        rows = [
            r for r in reversed(emu.state["deployment_statuses"]) if r["_deployment_id"] == deployment["id"]
        ]
        return paginate(call, rows)

    # ------------------------------------------------------------------- people, dispatch
    @route("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission")
    def get_permission(call: Call) -> Any:
        user = call.params["username"]
        permission = call.repo["_permissions"].get(user, "none")
        legacy = {"maintain": "write", "triage": "read"}.get(permission, permission)
        assert permission in PERMISSIONS
        return {
            "permission": legacy,
            "role_name": ROLE_NAMES[permission],
            "user": dict(
                emu._user_json(user),
                role_name=ROLE_NAMES[permission],
                permissions={
                    "admin": permission == "admin",
                    "maintain": permission in ("maintain", "admin"),
                    "push": permission in ("write", "maintain", "admin"),
                    "triage": permission not in ("none", "read"),
                    "pull": permission != "none",
                },
            ),
        }

    @route("POST", "/repos/{owner}/{repo}/dispatches")
    def repository_dispatch(call: Call) -> Any:
        data = call.json()
        _require(data, "RepositoryDispatch", "event_type")
        payload = data.get("client_payload") or {}
        if not isinstance(payload, dict) or len(payload) > 10:
            raise Reply(
                422,
                shapes.validation_error(
                    "RepositoryDispatch",
                    "client_payload",
                    "invalid",
                    "client_payload must be an object of at most 10 keys",
                ),
            )
        emu.state["dispatches"].append(
            {
                "_repo": call.full_name,
                "kind": "repository_dispatch",
                "repo": call.full_name,
                "event_type": data["event_type"],
                "client_payload": payload,
                "token": call.token,
            }
        )
        return Reply(204)

    @route("POST", "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches")
    def workflow_dispatch(call: Call) -> Any:
        data = call.json()
        _require(data, "WorkflowDispatch", "ref")
        inputs = data.get("inputs") or {}
        if len(inputs) > 25:
            raise Reply(422, shapes.validation_error("WorkflowDispatch", "inputs", "invalid"))
        emu.state["dispatches"].append(
            {
                "_repo": call.full_name,
                "kind": "workflow_dispatch",
                "repo": call.full_name,
                "workflow": call.params["workflow_id"],
                "ref": data["ref"],
                "inputs": inputs,
                "token": call.token,
            }
        )
        return Reply(204)

    # ------------------------------------------------------------------------ GitHub App
    @route("GET", "/app")
    def get_app(call: Call) -> Any:
        now = _iso(emu.clock())
        return {
            "id": emu.app_id,
            "slug": emu.app_slug,
            "node_id": shapes.node_id("APP", emu.app_id or 0),
            "client_id": f"Iv1.{emu.app_id}",
            "owner": shapes.user(emu.root, "octo-org", kind="Organization"),
            "name": emu.app_slug,
            "description": "mlops-bot",
            "external_url": emu.root,
            "html_url": f"{emu.root}/apps/{emu.app_slug}",
            "created_at": now,
            "updated_at": now,
            "permissions": {"issues": "write", "pull_requests": "write", "checks": "write"},
            "events": ["issue_comment", "pull_request", "push"],
        }

    @route("GET", "/repos/{owner}/{repo}/installation")
    def get_repo_installation(call: Call) -> Any:
        from github_emulator.routes import verify_app_jwt as verify

        verify(emu, call.token)
        full = call.full_name
        for inst in emu.state["installations"].values():
            if full in inst["repos"]:
                return installation_json(inst)
        raise Reply(404, shapes.basic_error("Not Found", 404))

    def installation_json(inst: dict[str, Any]) -> dict[str, Any]:
        now = _iso(emu.clock())
        return {
            "id": inst["id"],
            "account": shapes.user(emu.root, "octo-org", kind="Organization"),
            "repository_selection": "selected",
            "access_tokens_url": f"{emu.url}/app/installations/{inst['id']}/access_tokens",
            "repositories_url": f"{emu.url}/installation/repositories",
            "html_url": f"{emu.root}/settings/installations/{inst['id']}",
            "app_id": emu.app_id,
            "target_id": 1,
            "target_type": "Organization",
            "permissions": {"issues": "write", "pull_requests": "write", "checks": "write"},
            "events": ["issue_comment", "pull_request", "push"],
            "created_at": now,
            "updated_at": now,
            "single_file_name": None,
            "app_slug": emu.app_slug,
            "suspended_by": None,
            "suspended_at": None,
        }

    @route("POST", "/app/installations/{installation_id}/access_tokens")
    def create_installation_token(call: Call) -> Any:
        inst = emu.state["installations"].get(call.params["installation_id"])
        if inst is None:
            raise Reply(404, shapes.basic_error("Not Found", 404))
        token = "ghs_" + secrets.token_hex(18)
        expires = emu.clock() + 3600
        emu.state["installation_tokens"][token] = {"installation_id": inst["id"], "expires_at_epoch": expires}
        return Reply(
            201,
            {
                "token": token,
                "expires_at": _iso(expires),
                "permissions": {"issues": "write", "pull_requests": "write", "checks": "write"},
                "repository_selection": "selected",
            },
        )
