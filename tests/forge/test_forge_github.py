"""GitHubForge against the GitHub API emulator: every Forge method, pagination, sticky upsert,
retries on injected faults and the permission-naming errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth

from github_emulator import Emulator
from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Annotation, sticky_marker
from mlops_bot.forge.github import GitHubForge
from mlops_bot.forge.retry import RetryPolicy

REPO = "octo-org/churn"
SHA = "a" * 40
FAST = RetryPolicy(total=3, backoff_factor=0.01, secondary_wait=0.2, max_wait=5.0)


@pytest.fixture()
def gh() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, 7, head_sha=SHA, head_ref="feature/better-model", base_ref="main")
        yield emu


@pytest.fixture()
def forge(gh: Emulator) -> GitHubForge:
    return GitHubForge(REPO, Auth.Token("ghp_test"), api_url=gh.url, retry=FAST)


def test_comments_reactions_and_sticky_upsert_update_in_place(gh: Emulator, forge: GitHubForge) -> None:
    marker = sticky_marker("mlops-pr", "churn")
    first = forge.upsert_sticky_comment(7, marker, "## report v1")
    forge.create_comment(7, "an unrelated comment")
    second = forge.upsert_sticky_comment(7, marker, "## report v2")
    assert second.id == first.id
    bodies = [c.body for c in forge.list_comments(7)]
    assert bodies == [f"{marker}\n## report v2", "an unrelated comment"]
    # Another model gets its own sticky comment.
    other = forge.upsert_sticky_comment(7, sticky_marker("mlops-pr", "fraud"), "fraud report")
    assert other.id != first.id
    forge.add_reaction(first.id, "rocket")
    forge.add_reaction(first.id, "eyes")
    assert sorted(r["content"] for r in gh.state["reactions"]) == ["eyes", "rocket"]
    assert all(r["token"] == "ghp_test" for r in gh.requests)
    updated = forge.update_comment(first.id, "edited")
    assert updated.body == "edited" and updated.user == "github-actions[bot]"


def test_pagination_lists_more_than_100_comments(gh: Emulator, forge: GitHubForge) -> None:
    for i in range(230):
        gh.add_comment(REPO, 7, f"comment {i}", user="alice")
    marker = sticky_marker("mlops-pr", "churn")
    gh.add_comment(REPO, 7, f"{marker}\nold report", user="github-actions[bot]")
    comments = forge.list_comments(7)
    assert [c.body for c in comments[:230]] == [f"comment {i}" for i in range(230)]
    pages = [r for r in gh.requests if r["path"].endswith("/issues/7/comments") and r["method"] == "GET"]
    assert len(pages) == 3 and pages[0]["query"]["per_page"] == "100"
    # The sticky comment on page 3 is found and updated, not duplicated.
    forge.upsert_sticky_comment(7, marker, "new report")
    assert len(gh.state["comments"]) == 231
    assert gh.state["comments"][-1]["body"] == f"{marker}\nnew report"


def test_issues_and_pull_requests(forge: GitHubForge) -> None:
    issue = forge.create_issue("Drift detected", "details", labels=["drift", "mlops"])
    assert issue.labels == ["drift", "mlops"] and not issue.is_pull_request
    forge.create_issue("Other", "x", labels=["other"])
    assert [i.title for i in forge.list_issues(labels=["drift"])] == ["Drift detected"]
    closed = forge.update_issue(issue.number, body="resolved", state="closed")
    assert closed.state == "closed" and closed.body == "resolved"
    assert [i.title for i in forge.list_issues()] == ["Other"]  # PR #7 is not an issue
    assert {i.title for i in forge.list_issues(state="all")} == {"Drift detected", "Other"}
    pull = forge.get_pull_request(7)
    assert (pull.head_sha, pull.head_ref, pull.base_ref) == (SHA, "feature/better-model", "main")
    opened = forge.create_pull_request("Retrain", head="retrain/1", base="main", body="auto")
    assert opened.head_ref == "retrain/1"
    assert sorted(p.number for p in forge.list_pull_requests()) == [7, opened.number]
    with pytest.raises(ForgeError, match="invalid"):
        forge.create_pull_request("Again", head="retrain/1", base="main")


def test_check_runs_with_more_than_50_annotations(gh: Emulator, forge: GitHubForge) -> None:
    notes = [Annotation(path="data/train.csv", message=f"drift in column {i}", annotation_level="warning")
             for i in range(120)]
    run = forge.create_check_run(SHA, "mlops / churn", conclusion="failure", title="Gate failed",
                                 summary="accuracy dropped", annotations=notes)
    assert (run.status, run.conclusion, run.title) == ("completed", "failure", "Gate failed")
    stored = gh.state["check_runs"][0]
    assert [a["message"] for a in stored["_annotations"]] == [n.message for n in notes]
    pending = forge.create_check_run(SHA, "mlops / fraud", status="in_progress")
    done = forge.update_check_run(pending.id, conclusion="success", summary="all gates passed")
    assert (done.status, done.conclusion, done.summary) == ("completed", "success", "all gates passed")
    with pytest.raises(ForgeError, match="conclusion"):
        forge.create_check_run(SHA, "x")


def test_commit_status_releases_and_assets(gh: Emulator, forge: GitHubForge, tmp_path: Path) -> None:
    forge.create_commit_status(SHA, "success", "mlops/churn", "x" * 300, "https://ci.example/1")
    assert gh.state["statuses"][0]["description"] == "x" * 140
    assert forge.get_release("churn@v1.0.0") is None
    release = forge.create_release("churn@v1.0.0", body="first")
    model = tmp_path / "model.skops"
    model.write_bytes(bytes(range(256)) * 40)
    asset = forge.upload_release_asset(release.id, model)
    assert asset.size == 10240
    uploads = [r for r in gh.requests if r["upload"]]
    assert len(uploads) == 1 and uploads[0]["query"]["name"] == "model.skops"
    again = forge.get_release("churn@v1.0.0")
    assert again is not None and [a.name for a in again.assets] == ["model.skops"]
    out = forge.download_release_asset("churn@v1.0.0", "model.skops", tmp_path / "dl")
    assert out == tmp_path / "dl" and out.read_bytes() == model.read_bytes()
    (tmp_path / "dir").mkdir()
    assert forge.download_release_asset("churn@v1.0.0", "model.skops", tmp_path / "dir").name == "model.skops"
    with pytest.raises(ForgeError, match=r"no asset named report\.json"):
        forge.download_release_asset("churn@v1.0.0", "report.json", tmp_path)
    with pytest.raises(ForgeError, match="invalid"):
        forge.create_release("churn@v1.0.0")


def test_refs_deployments_permissions_and_dispatch(gh: Emulator, forge: GitHubForge) -> None:
    gh.set_ref(REPO, "refs/tags/churn@v1.0.0", "b" * 40)
    assert forge.get_ref_sha("tags/churn@v1.0.0") == "b" * 40
    assert forge.get_ref_sha("refs/tags/churn@v1.0.0") == "b" * 40
    assert forge.get_ref_sha("tags/churn@v9.9.9") is None
    deployment = forge.create_deployment("churn@v1.0.0", "staging", description="canary 10%",
                                         payload={"version": "v1.0.0"}, transient=True)
    forge.create_deployment_status(deployment.id, "in_progress", description="step 1")
    forge.create_deployment_status(deployment.id, "success", environment_url="http://127.0.0.1:1")
    forge.create_deployment("main", "production")
    assert [d.environment for d in forge.list_deployments()] == ["production", "staging"]
    assert [d.id for d in forge.list_deployments("staging")] == [deployment.id]
    assert [s.state for s in forge.list_deployment_statuses(deployment.id)] == ["success", "in_progress"]
    with pytest.raises(ForgeError, match="140"):
        forge.create_deployment_status(deployment.id, "failure", description="y" * 141)
    for user, level in (("maria", "maintain"), ("tom", "triage"), ("ada", "admin"), ("wes", "write")):
        gh.set_permission(REPO, user, level)
        assert forge.get_permission(user) == level
    assert forge.get_permission("stranger") == "none"
    forge.repository_dispatch("mlops-retrain", {"model": "churn"})
    forge.workflow_dispatch("mlops-deploy.yml", "main", {"version": "v1.0.0"})
    assert [(d["kind"], d.get("event_type") or d.get("workflow")) for d in gh.state["dispatches"]] == [
        ("repository_dispatch", "mlops-retrain"), ("workflow_dispatch", "mlops-deploy.yml")]


def test_retries_on_502_and_secondary_rate_limit(gh: Emulator, forge: GitHubForge) -> None:
    gh.inject(r"/issues/7/comments$", status=502, times=2, method="POST")
    comment = forge.create_comment(7, "survives 502s")
    attempts = [r for r in gh.requests if r["method"] == "POST" and r["path"].endswith("/issues/7/comments")]
    assert [r["status"] for r in attempts] == [502, 502, 201]
    assert len(gh.state["comments"]) == 1 and comment.body == "survives 502s"

    gh.inject(r"/check-runs$", status=403, times=1, headers={"Retry-After": "1"})
    started = time.monotonic()
    forge.create_check_run(SHA, "after secondary limit", conclusion="success")
    assert time.monotonic() - started >= 0.9  # Retry-After honoured
    statuses = [r["status"] for r in gh.requests if r["path"].endswith("/check-runs")]
    assert statuses == [403, 201]


def test_primary_rate_limit_waits_for_reset(gh: Emulator, forge: GitHubForge) -> None:
    reset = str(int(time.time()))  # already reset: wait ~1 s (GitHub's reset has 1 s resolution)
    gh.inject(r"/issues/7/comments$", status=429, times=1,
              headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset}, method="GET")
    assert forge.list_comments(7) == []
    statuses = [r["status"] for r in gh.requests if r["path"].endswith("/issues/7/comments")]
    assert statuses == [429, 200]


def test_rate_limit_too_far_away_is_an_error_not_a_sleep(gh: Emulator, forge: GitHubForge) -> None:
    reset = str(int(time.time()) + 3600)
    gh.inject(r"/dispatches$", status=403, times=1,
              headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
    started = time.monotonic()
    with pytest.raises(ForgeError, match="rate limit"):
        forge.repository_dispatch("mlops-retrain")
    assert time.monotonic() - started < 3


def test_persistent_5xx_gives_up_with_clear_error(gh: Emulator, forge: GitHubForge) -> None:
    gh.inject(r"/pulls/7$", status=503, times=10)
    with pytest.raises(ForgeError, match=r"read pull request #7: GitHub answered 503 .*after retries"):
        forge.get_pull_request(7)
    assert len([r for r in gh.requests if r["path"].endswith("/pulls/7")]) == FAST.total + 1


def test_permission_errors_name_the_missing_permission(gh: Emulator, forge: GitHubForge) -> None:
    gh.inject(r"/issues/7/comments$", status=403, times=1, method="POST",
              body={"message": "Resource not accessible by integration",
                    "documentation_url": "https://docs.github.com/rest"},
              headers={"X-Accepted-GitHub-Permissions": "pull_requests=write; issues=write"})
    with pytest.raises(ForgeError) as info:
        forge.create_comment(7, "hello")
    assert "pull-requests: write" in str(info.value) and "Resource not accessible" in str(info.value)
    assert len([r for r in gh.requests if r["method"] == "POST"]) == 1  # a permanent 403 is not retried
    gh.inject(r"/check-runs$", status=403, times=1,
              body={"message": "Resource not accessible by integration"})
    with pytest.raises(ForgeError, match="checks: write"):
        forge.create_check_run(SHA, "x", conclusion="success")
    gh.inject(r"/releases$", status=401, times=1, body={"message": "Bad credentials"})
    with pytest.raises(ForgeError, match="GITHUB_TOKEN"):
        forge.create_release("churn@v2.0.0")
    with pytest.raises(ForgeError, match=r"not found \(404\).*issues: write"):
        forge.create_comment(999, "nowhere")


def test_unknown_repository_and_bad_repo_name(gh: Emulator) -> None:
    forge = GitHubForge("octo-org/missing", Auth.Token("t"), api_url=gh.url, retry=FAST)
    with pytest.raises(ForgeError, match="404"):
        forge.list_comments(1)
    with pytest.raises(ForgeError, match="owner/name"):
        GitHubForge("no-slash", Auth.Token("t"), api_url=gh.url)
