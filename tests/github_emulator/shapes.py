"""JSON objects shaped as GitHub's REST API returns them (checked against `@octokit/openapi` by
tests/forge/test_forge_emulator_openapi.py), built from the emulator's own records."""

from __future__ import annotations

import hashlib
from typing import Any

USER_URLS = (
    "events_url",
    "followers_url",
    "following_url",
    "gists_url",
    "organizations_url",
    "received_events_url",
    "repos_url",
    "starred_url",
    "subscriptions_url",
)

REPO_URLS = (
    "archive_url",
    "assignees_url",
    "blobs_url",
    "branches_url",
    "collaborators_url",
    "comments_url",
    "commits_url",
    "compare_url",
    "contents_url",
    "contributors_url",
    "deployments_url",
    "downloads_url",
    "events_url",
    "forks_url",
    "git_commits_url",
    "git_refs_url",
    "git_tags_url",
    "hooks_url",
    "issue_comment_url",
    "issue_events_url",
    "issues_url",
    "keys_url",
    "labels_url",
    "languages_url",
    "merges_url",
    "milestones_url",
    "notifications_url",
    "pulls_url",
    "releases_url",
    "stargazers_url",
    "statuses_url",
    "subscribers_url",
    "subscription_url",
    "tags_url",
    "teams_url",
    "trees_url",
)


def node_id(kind: str, ident: int | str) -> str:
    return hashlib.sha1(f"{kind}:{ident}".encode(), usedforsecurity=False).hexdigest()[:20].upper()


def user(api: str, login: str, ident: int | None = None, kind: str = "User") -> dict[str, Any]:
    ident = (
        ident
        if ident is not None
        else int(hashlib.sha1(login.encode(), usedforsecurity=False).hexdigest()[:7], 16)
    )
    data: dict[str, Any] = {
        "login": login,
        "id": ident,
        "node_id": node_id("U", login),
        "type": kind,
        "site_admin": False,
        "avatar_url": f"{api}/avatars/{login}",
        "gravatar_id": "",
        "url": f"{api}/users/{login}",
        "html_url": f"{api}/{login}",
    }
    for key in USER_URLS:
        data[key] = f"{api}/users/{login}/{key[:-4]}"
    return data


def repository(
    api: str, full_name: str, ident: int, default_branch: str, created_at: str, full: bool = True
) -> dict[str, Any]:
    owner, name = full_name.split("/", 1)
    url = f"{api}/repos/{full_name}"
    data: dict[str, Any] = {
        "id": ident,
        "node_id": node_id("R", full_name),
        "name": name,
        "full_name": full_name,
        "owner": user(api, owner, kind="Organization"),
        "private": False,
        "fork": False,
        "description": None,
        "html_url": f"{api}/{full_name}",
        "url": url,
    }
    for key in REPO_URLS:
        data[key] = f"{url}/{key[:-4]}"
    if full:
        data.update(
            {
                "clone_url": f"{api}/{full_name}.git",
                "git_url": f"git://{full_name}.git",
                "ssh_url": f"git@example:{full_name}.git",
                "svn_url": f"{api}/{full_name}",
                "mirror_url": None,
                "homepage": None,
                "language": "Python",
                "default_branch": default_branch,
                "forks": 0,
                "forks_count": 0,
                "watchers": 0,
                "watchers_count": 0,
                "stargazers_count": 0,
                "open_issues": 0,
                "open_issues_count": 0,
                "size": 1,
                "has_issues": True,
                "has_projects": False,
                "has_wiki": False,
                "has_pages": False,
                "has_downloads": True,
                "has_discussions": False,
                "archived": False,
                "disabled": False,
                "license": None,
                "pushed_at": created_at,
                "created_at": created_at,
                "updated_at": created_at,
                "network_count": 0,
                "subscribers_count": 0,
                "visibility": "public",
            }
        )
    return data


def reaction_rollup(url: str, contents: list[str]) -> dict[str, Any]:
    rollup: dict[str, Any] = {"url": url, "total_count": len(contents)}
    for kind in ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"):
        rollup[kind] = contents.count(kind)
    return rollup


def basic_error(message: str, status: int, doc: str = "https://docs.github.com/rest") -> dict[str, Any]:
    return {"message": message, "documentation_url": doc, "status": str(status)}


def validation_error(
    resource: str, field: str, code: str = "missing_field", message: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"resource": resource, "field": field, "code": code}
    if message:
        error["message"] = message
    return {
        "message": "Validation Failed",
        "errors": [error],
        "documentation_url": "https://docs.github.com/rest",
        "status": "422",
    }
