"""Publishing a validation report on a pull request: the sticky comment (report.md) and a check
run (report.json) whose conclusion is the gate verdict, so branch protection can require it.

`check_from_report` is the pure part (report dict in, check-run fields out); `publish_report` does
the forge calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import (
    STICKY_MARKER_PREFIX,
    Annotation,
    CheckConclusion,
    CheckRun,
    Comment,
    Forge,
    sticky_marker,
)
from mlops_bot.report import escape
from mlops_bot.report.images import embed_images

COMMENT_LIMIT = 65536  # GitHub refuses longer comment bodies
CONFIG_PATH = ".github/mlops.yml"

ImagesStep = Callable[[str], tuple[Mapping[str, str] | None, str]]


class CheckFields(BaseModel):
    conclusion: CheckConclusion
    title: str
    summary: str
    annotations: list[Annotation]


class PublishedReport(BaseModel):
    comment: Comment
    check_run: CheckRun | None


def check_from_report(report: dict[str, Any], config_path: str = CONFIG_PATH) -> CheckFields:
    """Conclusion from the verdict, a gate table as summary, one annotation per failed gate on the
    config file that defines the gates (where a reviewer would change them)."""
    verdict = report.get("verdict")
    if verdict not in ("pass", "fail"):
        raise ForgeError(f"report.json: 'verdict' must be 'pass' or 'fail', got {verdict!r}")
    model = escape.truncate(str(report.get("model") or "model"), 100)
    gates = [g for g in report.get("gates") or [] if isinstance(g, dict)]
    # A gate that could not be judged (no baseline for a relative gate) is "skipped", as in the comment.
    skipped = [g for g in gates if g.get("status") == "skipped"]
    failed = [g for g in gates if not g.get("passed") and g.get("status") != "skipped"]
    if verdict == "fail":
        title = (
            f"{model}: {len(failed)} of {len(gates)} gates failed" if gates else f"{model}: validation failed"
        )
    else:
        judged = len(gates) - len(skipped)
        title = f"{model}: all {judged} gates passed" if gates else f"{model}: validation passed"
        if skipped:
            title += f", {len(skipped)} skipped"
    lines = [f"**{escape.text(title)}**", ""]
    if gates:
        lines += ["| Gate | Rule | Result |", "|---|---|---|"]
        for gate in gates:
            mark = "⏭️ skipped" if gate in skipped else "✅ pass" if gate.get("passed") else "❌ fail"
            lines.append(
                f"| {escape.cell(gate.get('metric', '?'))} | {escape.code(gate.get('rule', ''), table=True)} "
                f"| {mark} |"
            )
    metrics = report.get("metrics") or {}
    if isinstance(metrics, dict) and metrics:
        lines += ["", "| Metric | Base | Head | Change |", "|---|---|---|---|"]
        for name, row in metrics.items():
            if isinstance(row, dict):
                lines.append(
                    f"| {escape.cell(name)} | {_fmt(row.get('base'))} | {_fmt(row.get('head'))} | "
                    f"{_fmt(row.get('diff'))} |"
                )
    annotations = [
        Annotation(
            path=config_path,
            annotation_level="failure",
            title=escape.truncate(f"Gate failed: {g.get('metric', '?')}", 255),
            message=escape.truncate(
                str(g.get("message") or f"{g.get('metric', '?')} did not meet {g.get('rule', '')}"), 2000
            ),
        )
        for g in failed
    ]
    return CheckFields(
        conclusion="success" if verdict == "pass" else "failure",
        title=title,
        summary="\n".join(lines),
        annotations=annotations,
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return escape.cell(value)  # report.json may come from an untrusted run: text stays text


def comment_body(markdown: str, workflow: str, model: str) -> tuple[str, str]:
    """(marker, body): the marker from the report's first line when the pipeline put one there,
    else one for this workflow and model; the body cut to GitHub's limit with a note."""
    first = markdown.lstrip().splitlines()[0] if markdown.strip() else ""
    marker = first.strip() if first.startswith(STICKY_MARKER_PREFIX) else sticky_marker(workflow, model)
    body = markdown if marker in markdown else f"{marker}\n{markdown}"
    if len(body) > COMMENT_LIMIT:
        note = "\n\n_(report truncated: the full report is in the workflow run's artifacts)_"
        body = body[: COMMENT_LIMIT - len(note)] + note
    return marker, body


def publish_report(
    forge: Forge,
    report_dir: Path,
    pr: int,
    *,
    workflow: str = "mlops-pr",
    check_name: str | None = None,
    head_sha: str | None = None,
    images: ImagesStep | None = None,
) -> PublishedReport:
    """Upsert the sticky comment and create the check run. `images(head_sha)`, when given, runs
    after the PR/commit check and returns ({report file: image URL} or None to keep the plot list,
    a note): the comment then shows the images (report/images.py)."""
    markdown_path = report_dir / "report.md"
    if not markdown_path.is_file():
        raise ForgeError(
            f"{markdown_path} does not exist: run `mlops-bot validate --output {report_dir}` first"
        )
    report: dict[str, Any] = {}
    json_path = report_dir / "report.json"
    if json_path.is_file():
        try:
            report = json.loads(json_path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise ForgeError(f"{json_path}: not valid JSON ({error})") from error
    pull = forge.get_pull_request(pr)
    if head_sha and pull.head_sha and pull.head_sha != head_sha:
        # The PR number may come from an untrusted artifact (a fork's workflow_run): only post on the
        # PR whose head is the commit the report was built from.
        raise ForgeError(
            f"pull request #{pr} is at {pull.head_sha[:12]}, not {head_sha[:12]}: refusing to post a "
            "report built from another commit (a stale run, or a PR number that does not belong to it)"
        )
    model = str(report.get("model") or "model")
    markdown = markdown_path.read_text(encoding="utf-8")
    if images is not None:
        sha = head_sha or pull.head_sha
        if not sha:
            raise ForgeError(f"pull request #{pr} has no head sha: pass --head-sha")
        urls, note = images(sha)
        if urls is not None:
            markdown = embed_images(markdown, urls, note)
    marker, body = comment_body(markdown, workflow, model)
    comment = forge.upsert_sticky_comment(pr, marker, body)
    run = None
    if report:
        fields = check_from_report(report)
        sha = head_sha or pull.head_sha
        if not sha:
            raise ForgeError(f"pull request #{pr} has no head sha: pass --head-sha")
        run = forge.create_check_run(
            sha,
            check_name or f"mlops-bot / {model}",
            conclusion=fields.conclusion,
            title=fields.title,
            summary=fields.summary,
            annotations=fields.annotations,
        )
    return PublishedReport(comment=comment, check_run=run)
