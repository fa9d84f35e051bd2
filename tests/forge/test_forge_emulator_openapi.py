"""The emulator cannot drift from GitHub: every endpoint it implements is driven here (successes and
errors), and every JSON answer is validated against the operation's response schema in GitHub's
own OpenAPI description (npm `@octokit/openapi`, installed by `make tools`)."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from github_emulator import Emulator
from github_emulator.app_keys import app_key_pair
from mlops_bot.forge.auth import app_jwt

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / ".cache/tools/node_modules/@octokit/openapi/generated/api.github.com.json"
REPO = "octo-org/churn"
SHA = "d" * 40
INTERNAL = {"/_downloads/{asset_id}"}  # the storage URL GitHub redirects downloads to: not REST API


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} missing: run `make tools` (installs @octokit/openapi)")
    return json.loads(SPEC.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def validator_for(spec: dict[str, Any]) -> Any:
    from openapi_schema_validator import OAS30Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    registry: Registry[Any] = Registry().with_resource(
        "urn:github", Resource.from_contents(spec, default_specification=DRAFT4)
    )

    def make(pointer: str) -> Any:
        ref = "urn:github#" + urllib.parse.quote(pointer, safe="/~")
        return OAS30Validator({"$ref": ref}, registry=registry)

    return make


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


@pytest.fixture(scope="module")
def exercised() -> Iterator[tuple[Emulator, list[dict[str, Any]]]]:
    private, public = app_key_pair()
    with Emulator(app_id=99, app_public_key=public) as gh:
        gh.add_repo(REPO)
        gh.add_pull(REPO, 5, head_sha=SHA)
        gh.add_installation(7, [REPO])
        gh.set_permission(REPO, "alice", "maintain")
        _drive(gh, private)
        yield gh, gh.requests


def _drive(gh: Emulator, private_key: str) -> None:  # one call per endpoint, plus error answers
    api = f"{gh.url}/repos/{REPO}"
    headers = {"Authorization": "Bearer ghp_openapi", "Accept": "application/vnd.github+json"}
    with httpx.Client(headers=headers, timeout=10) as http:

        def call(method: str, url: str, expect: int, **kwargs: Any) -> Any:
            response = http.request(method, url, **kwargs)
            assert response.status_code == expect, (method, url, response.status_code, response.text)
            return (
                response.json()
                if response.content and "json" in response.headers.get("content-type", "")
                else None
            )

        call("GET", api, 200)
        call("GET", f"{gh.url}/repos/{REPO}x", 404)
        comment = call("POST", f"{api}/issues/5/comments", 201, json={"body": "hello"})
        call("POST", f"{api}/issues/5/comments", 422, json={})
        call("POST", f"{api}/issues/999/comments", 404, json={"body": "x"})
        call("GET", f"{api}/issues/5/comments", 200, params={"per_page": 1})
        call("GET", f"{api}/issues/comments/{comment['id']}", 200)
        call("PATCH", f"{api}/issues/comments/{comment['id']}", 200, json={"body": "edited"})
        call("POST", f"{api}/issues/comments/{comment['id']}/reactions", 201, json={"content": "eyes"})
        call("POST", f"{api}/issues/comments/{comment['id']}/reactions", 200, json={"content": "eyes"})
        call("POST", f"{api}/issues/comments/{comment['id']}/reactions", 422, json={"content": "nope"})
        call("GET", f"{api}/issues/comments/{comment['id']}/reactions", 200)
        issue = call("POST", f"{api}/issues", 201, json={"title": "Drift", "body": "b", "labels": ["drift"]})
        call("GET", f"{api}/issues", 200, params={"state": "all", "labels": "drift"})
        call("GET", f"{api}/issues/{issue['number']}", 200)
        call("PATCH", f"{api}/issues/{issue['number']}", 200, json={"state": "closed"})
        labels = f"{api}/issues/{issue['number']}/labels"
        call("POST", labels, 200, json={"labels": ["mlops-bot:accept-gates"]})
        call("POST", labels, 422, json={})
        call("GET", f"{api}/issues/404", 404)
        call("POST", f"{api}/pulls", 201, json={"title": "t", "head": "retrain", "base": "main"})
        call("POST", f"{api}/pulls", 422, json={"title": "t", "head": "retrain", "base": "main"})
        call("GET", f"{api}/pulls", 200, params={"state": "all"})
        call("GET", f"{api}/pulls/5", 200)
        run = call(
            "POST",
            f"{api}/check-runs",
            201,
            json={
                "name": "mlops",
                "head_sha": SHA,
                "status": "completed",
                "conclusion": "failure",
                "output": {
                    "title": "t",
                    "summary": "s",
                    "annotations": [
                        {
                            "path": "a.py",
                            "start_line": 1,
                            "end_line": 1,
                            "annotation_level": "failure",
                            "message": "m",
                        }
                    ],
                },
            },
        )
        call("POST", f"{api}/check-runs", 422, json={"name": "x", "head_sha": SHA, "status": "completed"})
        call("GET", f"{api}/check-runs/{run['id']}", 200)
        call("PATCH", f"{api}/check-runs/{run['id']}", 200, json={"conclusion": "success"})
        call("GET", f"{api}/check-runs/{run['id']}/annotations", 200)
        call("GET", f"{api}/commits/{SHA}/check-runs", 200)
        call("POST", f"{api}/statuses/{SHA}", 201, json={"state": "success", "context": "mlops"})
        call("POST", f"{api}/statuses/{SHA}", 422, json={"state": "great"})
        call("GET", f"{api}/commits/{SHA}/statuses", 200)
        release = call("POST", f"{api}/releases", 201, json={"tag_name": "churn@v1.0.0", "body": "b"})
        call("POST", f"{api}/releases", 422, json={"tag_name": "churn@v1.0.0"})
        upload = release["upload_url"].split("{")[0]
        asset = call(
            "POST",
            upload,
            201,
            params={"name": "model.skops"},
            content=b"\x00model",
            headers={"Content-Type": "application/octet-stream"},
        )
        call("POST", upload, 422, params={"name": "model.skops"}, content=b"again")
        call("GET", f"{api}/releases", 200)
        call("GET", f"{api}/releases/tags/{urllib.parse.quote('churn@v1.0.0')}", 200)
        call("GET", f"{api}/releases/tags/nope", 404)
        call("GET", f"{api}/releases/{release['id']}", 200)
        call("GET", f"{api}/releases/{release['id']}/assets", 200)
        call("GET", f"{api}/releases/assets/{asset['id']}", 200)
        draft = call("POST", f"{api}/releases", 201, json={"tag_name": "churn@v1.0.1", "draft": True})
        call("GET", f"{api}/releases/tags/{urllib.parse.quote('churn@v1.0.1')}", 404)  # drafts: no tag yet
        call("PATCH", f"{api}/releases/{draft['id']}", 422, json={"tag_name": "churn@v1.0.0", "draft": False})
        call("PATCH", f"{api}/releases/{draft['id']}", 200, json={"draft": False, "body": "published"})
        call("DELETE", f"{api}/releases/{draft['id']}", 204)
        call("DELETE", f"{api}/releases/{draft['id']}", 404)
        found = http.get(
            f"{api}/releases/assets/{asset['id']}", headers={"Accept": "application/octet-stream"}
        )
        assert found.status_code == 302
        assert http.get(found.headers["location"]).content == b"\x00model"
        call("POST", f"{api}/git/refs", 201, json={"ref": "refs/tags/churn@v1.0.0", "sha": SHA})
        call("POST", f"{api}/git/refs", 422, json={"ref": "refs/tags/churn@v1.0.0", "sha": SHA})
        call("GET", f"{api}/git/ref/tags/churn@v1.0.0", 200)
        call("GET", f"{api}/git/ref/tags/missing", 404)
        call("GET", f"{api}/git/matching-refs/tags/churn", 200)
        deployment = call(
            "POST",
            f"{api}/deployments",
            201,
            json={"ref": "main", "environment": "staging", "payload": {"v": 1}},
        )
        call("GET", f"{api}/deployments", 200, params={"environment": "staging"})
        call("GET", f"{api}/deployments/{deployment['id']}", 200)
        call("POST", f"{api}/deployments/{deployment['id']}/statuses", 201, json={"state": "in_progress"})
        call("POST", f"{api}/deployments/{deployment['id']}/statuses", 422, json={"state": "bad"})
        call("GET", f"{api}/deployments/{deployment['id']}/statuses", 200)
        call("GET", f"{api}/collaborators/alice/permission", 200)
        call("GET", f"{api}/collaborators/bob/permission", 200)
        call(
            "POST", f"{api}/dispatches", 204, json={"event_type": "mlops-retrain", "client_payload": {"a": 1}}
        )
        call("POST", f"{api}/dispatches", 422, json={})
        call("POST", f"{api}/actions/workflows/deploy.yml/dispatches", 204, json={"ref": "main"})
        jwt_headers = {"Authorization": f"Bearer {app_jwt(99, private_key, time.time())}"}
        call("GET", f"{gh.url}/app", 200, headers=jwt_headers)
        call("GET", f"{gh.url}/app", 401, headers={"Authorization": "Bearer not-a-jwt"})
        call("GET", f"{api}/installation", 200, headers=jwt_headers)
        call("POST", f"{gh.url}/app/installations/7/access_tokens", 201, headers=jwt_headers)
        call("POST", f"{gh.url}/app/installations/8/access_tokens", 404, headers=jwt_headers)


def test_every_route_is_a_github_operation_and_is_exercised(
    spec: dict[str, Any], exercised: tuple[Emulator, list[dict[str, Any]]]
) -> None:
    gh, requests = exercised
    routes = {(method, template) for method, template, _, _ in gh._routes if template not in INTERNAL}
    for method, template in routes:
        assert method.lower() in spec["paths"].get(template, {}), (
            f"{method} {template} is not in GitHub's API"
        )
    seen = {(r["method"], r["operation"]) for r in requests}
    assert routes <= seen, f"not exercised: {sorted(routes - seen)}"


def test_every_answer_matches_the_openapi_response_schema(
    spec: dict[str, Any], validator_for: Any, exercised: tuple[Emulator, list[dict[str, Any]]]
) -> None:
    _, requests = exercised
    checked = 0
    for entry in requests:
        template = entry["operation"]
        if template is None or template in INTERNAL:
            continue
        operation = spec["paths"][template][entry["method"].lower()]
        status = str(entry["status"])
        if status not in operation["responses"]:
            # GitHub answers some errors its description leaves out (422 on check runs, 401 on
            # anything): those must still have GitHub's error shape.
            assert entry["status"] >= 400, f"{entry['method']} {template} may not answer {status}"
            name = "validation-error" if status == "422" else "basic-error"
            errors = list(
                validator_for(_pointer("components", "schemas", name)).iter_errors(entry["response"])
            )
            assert not errors and entry["response"].get("message"), (template, status, errors)
            checked += 1
            continue
        response = operation["responses"][status]
        pointer = _pointer("paths", template, entry["method"].lower(), "responses", status)
        if "$ref" in response:
            pointer = response["$ref"][1:]
            response = spec
            for part in pointer.strip("/").split("/"):
                response = response[part.replace("~1", "/").replace("~0", "~")]
        content = response.get("content", {})
        if "application/json" not in content:
            if entry["status"] < 400:
                assert "response" not in entry, (template, status)  # 204: no body
                continue
            # An error documented without a body: GitHub still sends its error JSON.
            name = "validation-error" if status == "422" else "basic-error"
            errors = list(
                validator_for(_pointer("components", "schemas", name)).iter_errors(entry["response"])
            )
            assert not errors, (template, status, errors)
            continue
        if status == "302":
            continue
        validator = validator_for(pointer + _pointer("content", "application/json", "schema"))
        errors = sorted(validator.iter_errors(entry["response"]), key=str)
        where = f"{entry['method']} {template} {status}"
        assert not errors, f"{where}: {errors[0].message} at {list(errors[0].path)}"
        checked += 1
    assert checked >= 50


def test_headers_behave_like_github(exercised: tuple[Emulator, list[dict[str, Any]]]) -> None:
    gh, _ = exercised
    with httpx.Client(headers={"Authorization": "token t"}) as http:
        for i in range(3):
            gh.add_comment(REPO, 5, f"c{i}")
        response = http.get(f"{gh.url}/repos/{REPO}/issues/5/comments", params={"per_page": 2, "page": 2})
        assert response.headers["x-github-api-version-selected"] == "2022-11-28"
        assert int(response.headers["x-ratelimit-remaining"]) < int(response.headers["x-ratelimit-limit"])
        assert response.headers["x-ratelimit-reset"].isdigit()
        links = response.headers["link"]
        assert 'rel="prev"' in links and 'rel="first"' in links and "page=1" in links
        missing = http.get(f"{gh.url}/repos/{REPO}/nothing/here")
        assert missing.status_code == 404 and set(missing.json()) >= {"message", "documentation_url"}
        assert (
            http.post(
                f"{gh.url}/repos/{REPO}/issues", json={"title": "x"}, headers={"Authorization": ""}
            ).status_code
            == 401
        )
