"""`mlops-bot comment` and `mlops-bot dispatch` against the emulator, through the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from github_emulator import Emulator
from mlops_bot.cli import main
from mlops_bot.forge.base import sticky_marker
from mlops_bot.forge.publish import COMMENT_LIMIT, check_from_report, comment_body

REPO = "octo-org/churn"
SHA = "c" * 40


@pytest.fixture()
def gh(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.add_repo(REPO)
        emu.add_pull(REPO, 12, head_sha=SHA)
        for name in ("MLOPS_BOT_LOCAL_FORGE", "MLOPS_BOT_APP_ID", "GH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_actions")
        monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
        monkeypatch.setenv("GITHUB_API_URL", emu.url)
        yield emu


def _report(tmp: Path, verdict: str, body: str) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "report.md").write_text(f"{sticky_marker('mlops-pr', 'churn')}\n{body}\n", encoding="utf-8")
    gates = [{"metric": "accuracy", "rule": ">= base - 0.01", "passed": verdict == "pass"},
             {"metric": "f1", "rule": ">= 0.7", "passed": True}]
    (tmp / "report.json").write_text(json.dumps({
        "model": "churn", "verdict": verdict, "gates": gates,
        "metrics": {"accuracy": {"base": 0.9, "head": 0.85 if verdict == "fail" else 0.91,
                                 "diff": -0.05 if verdict == "fail" else 0.01, "ci": [0.8, 0.9]}},
    }), encoding="utf-8")
    return tmp


def test_comment_upserts_sticky_comment_and_creates_check_run(gh: Emulator, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    first = _report(tmp_path / "r1", "fail", "## churn: accuracy dropped")
    assert main(["comment", "--report-dir", str(first), "--pr", "12"]) == 0
    second = _report(tmp_path / "r2", "pass", "## churn: all good now")
    assert main(["comment", "--report-dir", str(second), "--pr", "12", "--check-name", "mlops / churn"]) == 0
    comments = gh.state["comments"]
    assert len(comments) == 1 and "all good now" in comments[0]["body"]  # updated in place
    runs = gh.state["check_runs"]
    assert [(r["name"], r["head_sha"], r["conclusion"]) for r in runs] == [
        ("mlops-bot / churn", SHA, "failure"), ("mlops / churn", SHA, "success")]
    assert [a["title"] for a in runs[0]["_annotations"]] == ["Gate failed: accuracy"]
    assert runs[0]["output"]["title"] == "churn: 1 of 2 gates failed"
    assert "check run" in capsys.readouterr().out


def test_dispatch_and_errors(gh: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dispatch", "mlops-retrain", "--payload", '{"model": "churn"}']) == 0
    assert gh.state["dispatches"][0]["client_payload"] == {"model": "churn"}
    assert main(["dispatch", "x", "--payload", "[1]"]) == 2
    assert main(["comment", "--report-dir", str(tmp_path / "missing"), "--pr", "12"]) == 2
    gh.inject(r"/issues/12/comments$", status=403, times=1, method="GET",
              body={"message": "Resource not accessible by integration"},
              headers={"X-Accepted-GitHub-Permissions": "pull_requests=read"})
    assert main(["comment", "--report-dir", str(_report(tmp_path / "r", "pass", "ok")), "--pr", "12"]) == 2
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("mlops-bot: error:")]
    assert "pull-requests: read" in lines[-1]


def test_comment_refuses_a_pr_whose_head_is_another_commit(gh: Emulator, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The PR number may come from a fork's artifact: a report built from another commit is refused."""
    report = _report(tmp_path / "r", "pass", "ok")
    assert main(["comment", "--report-dir", str(report), "--pr", "12", "--head-sha", "d" * 40]) == 2
    assert "refusing to post" in capsys.readouterr().err
    assert gh.state["comments"] == [] and gh.state["check_runs"] == []
    assert main(["comment", "--report-dir", str(report), "--pr", "12", "--head-sha", SHA]) == 0
    assert len(gh.state["comments"]) == 1


def test_pure_report_helpers() -> None:
    fields = check_from_report({"model": "m", "verdict": "pass", "gates": []})
    assert (fields.conclusion, fields.title, fields.annotations) == ("success", "m: validation passed", [])
    with pytest.raises(Exception, match="verdict"):
        check_from_report({"model": "m", "verdict": "maybe"})
    marker, body = comment_body("# plain report", "wf", "m")
    assert marker == sticky_marker("wf", "m") and body.startswith(marker)
    _, long_body = comment_body("x" * 100_000, "wf", "m")
    assert len(long_body) <= COMMENT_LIMIT and long_body.endswith("artifacts)_")


def test_comment_pushes_images_to_the_assets_branch_and_embeds_their_urls(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The comment job's step against the GitHub stand-in: images committed to `mlops-bot/assets`
    of the base repository's origin (a real bare repo), the comment embeds their commit-SHA URLs,
    and every URL, read back from the rendered comment, names a pushed file with the same bytes."""
    import re
    import subprocess

    import gfm

    origin, checkout = tmp_path / "origin.git", tmp_path / "checkout"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(checkout)], check=True, capture_output=True)
    (checkout / ".github").mkdir()
    (checkout / ".github" / "mlops.yml").write_text(
        "model: {name: churn, task: classification}\ntrain: {builtin: {estimator: random_forest}}\n"
        "data: {train: a.csv, holdout: b.csv, target: y}\nreport: {images: branch}\n")
    report = _report(tmp_path / "r", "pass", "## churn\n\n<!-- mlops-bot:images -->\n"
                     "Plots beside this report: `plots/roc_curve.png`\n<!-- /mlops-bot:images -->")
    (report / "plots").mkdir()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    (report / "plots" / "roc_curve.png").write_bytes(png)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.example")
    monkeypatch.chdir(checkout)  # the job's workspace: the base branch's checkout and config
    assert main(["comment", "--report-dir", str(report), "--pr", "12", "--head-sha", SHA]) == 0
    body = gh.state["comments"][0]["body"]
    (url,) = gfm.image_urls(gfm.render(body))
    match = re.fullmatch(rf"https://github\.example/{REPO}/blob/([0-9a-f]{{40}})/(pr-12/{SHA}/roc_curve\.png)"
                         r"\?raw=true", url)
    assert match, url
    pushed = subprocess.run(["git", "-C", str(origin), "cat-file", "blob", f"{match[1]}:{match[2]}"],
                            capture_output=True, check=True).stdout
    assert pushed == png
    tip = subprocess.run(["git", "-C", str(origin), "rev-parse", "refs/heads/mlops-bot/assets"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert tip == match[1] and "Plots beside this report" not in body
    # --images artifact keeps the plot list; none drops it
    assert main(["comment", "--report-dir", str(report), "--pr", "12", "--images", "artifact"]) == 0
    assert "Plots beside this report" in gh.state["comments"][0]["body"]
    assert main(["comment", "--report-dir", str(report), "--pr", "12", "--images", "none"]) == 0
    assert "roc_curve" not in gh.state["comments"][0]["body"]


def test_comment_is_posted_with_the_plot_list_when_the_images_cannot_be_pushed(
    gh: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No git checkout to push from (or a refused push): the verdict still reaches the PR."""
    report = _report(tmp_path / "r", "pass", "## churn\n\n<!-- mlops-bot:images -->\n"
                     "Plots beside this report: `plots/roc_curve.png`\n<!-- /mlops-bot:images -->")
    (report / "plots").mkdir()
    (report / "plots" / "roc_curve.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    monkeypatch.chdir(tmp_path)  # not a git repository
    args = ["comment", "--report-dir", str(report), "--pr", "12", "--head-sha", SHA, "--images", "branch"]
    assert main(args) == 0
    assert "Plots beside this report" in gh.state["comments"][0]["body"]
    assert gh.state["check_runs"][0]["conclusion"] == "success"
    assert "warning: report images not published" in capsys.readouterr().err
