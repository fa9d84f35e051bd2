"""GitHub's REST JSON and the forge's types (pure): what `GitHubForge` answers with, field by field
(GitHub's nulls as empty strings), and request bodies cut to GitHub's limits."""

from __future__ import annotations

from typing import Any

from mlops_bot.forge.base import (
    Annotation,
    CheckRun,
    Comment,
    Deployment,
    DeploymentStatus,
    Issue,
    PullRequest,
    Release,
    ReleaseAsset,
)

ANNOTATIONS_PER_REQUEST = 50  # GitHub refuses more in one request


def annotation_follow_ups(title: str, summary: str, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The check-run updates that carry the annotations past the first request's 50 (GitHub takes
    at most 50 a request; each update adds to the run's annotations)."""
    return [{"output": {"title": title, "summary": summary,
                        "annotations": notes[start:start + ANNOTATIONS_PER_REQUEST]}}
            for start in range(ANNOTATIONS_PER_REQUEST, len(notes), ANNOTATIONS_PER_REQUEST)]


def text(value: Any) -> str:
    return "" if value is None else str(value)


def comment_from(raw: dict[str, Any]) -> Comment:
    user = raw.get("user") or {}
    return Comment(
        id=raw["id"],
        body=text(raw.get("body")),
        user=text(user.get("login")),
        user_type=text(user.get("type")) or "User",
        html_url=text(raw.get("html_url")),
        created_at=text(raw.get("created_at")),
        updated_at=text(raw.get("updated_at")),
    )


def issue_from(raw: dict[str, Any]) -> Issue:
    return Issue(
        number=raw["number"],
        title=text(raw.get("title")),
        body=text(raw.get("body")),
        state=raw.get("state", "open"),
        labels=[text(x.get("name")) for x in raw.get("labels") or []],
        html_url=text(raw.get("html_url")),
        is_pull_request="pull_request" in raw,
    )


def pull_request_from(raw: dict[str, Any]) -> PullRequest:
    return PullRequest(
        number=raw["number"],
        title=text(raw.get("title")),
        body=text(raw.get("body")),
        state=raw.get("state", "open"),
        head_ref=raw["head"]["ref"],
        head_sha=text(raw["head"].get("sha")),
        base_ref=raw["base"]["ref"],
        merged=bool(raw.get("merged") or raw.get("merged_at")),
        user=text((raw.get("user") or {}).get("login")),
        html_url=text(raw.get("html_url")),
    )


def check_run_from(raw: dict[str, Any]) -> CheckRun:
    output = raw.get("output") or {}
    return CheckRun(
        id=raw["id"],
        name=raw["name"],
        head_sha=raw["head_sha"],
        status=raw["status"],
        conclusion=raw.get("conclusion"),
        title=text(output.get("title")),
        summary=text(output.get("summary")),
        html_url=text(raw.get("html_url")),
    )


def annotation_json(note: Annotation) -> dict[str, Any]:
    data = note.model_dump(exclude_none=True)
    data["message"] = data["message"][: 64 * 1024]
    return data


def release_from(raw: dict[str, Any]) -> Release:
    return Release(
        id=raw["id"],
        tag_name=raw["tag_name"],
        name=text(raw.get("name")),
        body=text(raw.get("body")),
        prerelease=bool(raw.get("prerelease")),
        draft=bool(raw.get("draft")),
        html_url=text(raw.get("html_url")),
        assets=[
            ReleaseAsset(
                id=a["id"],
                name=a["name"],
                size=a["size"],
                browser_download_url=text(a.get("browser_download_url")),
            )
            for a in raw.get("assets") or []
        ],
    )


def deployment_from(raw: dict[str, Any]) -> Deployment:
    payload = raw.get("payload")
    return Deployment(
        id=raw["id"],
        ref=text(raw.get("ref")),
        sha=text(raw.get("sha")),
        environment=text(raw.get("environment")),
        description=text(raw.get("description")),
        payload=payload if isinstance(payload, dict) else {},
        created_at=text(raw.get("created_at")),
    )


def deployment_status_from(raw: dict[str, Any]) -> DeploymentStatus:
    return DeploymentStatus(
        id=raw["id"],
        state=raw["state"],
        description=text(raw.get("description")),
        environment=text(raw.get("environment")),
        environment_url=text(raw.get("environment_url")),
        log_url=text(raw.get("log_url") or raw.get("target_url")),
        created_at=text(raw.get("created_at")),
    )
