"""Publishing a validation report on a pull request: the sticky comment (report.md) and a check
run (report.json) whose conclusion is the gate verdict, so branch protection can require it.

`check_from_report` is the pure part (report dict in, check-run fields out); `publish_report` does
the forge calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import (
    STICKY_MARKER_PREFIX,
    Annotation,
    CheckConclusion,
    CheckRun,
    Comment,
    Forge,
    PullRequest,
    sticky_marker,
)
from mlops_bot.report import escape
from mlops_bot.report.images import embed_images

if TYPE_CHECKING:
    from mlops_bot.pipeline.base_gates import Judging
    from mlops_bot.pipeline.result import ValidationReport

COMMENT_LIMIT = 65536  # GitHub refuses longer comment bodies
CONFIG_PATH = ".github/mlops.yml"

ImagesStep = Callable[[str], tuple[Mapping[str, str] | None, str]]
# The trusted job's judge: (the pull request as the forge sees it, the artifact's report read as data)
# -> the judging config with its notice, and base values it read itself (or None).
Judge = Callable[[PullRequest, "ValidationReport"], "tuple[Judging, Mapping[str, float] | None]"]


class CheckFields(BaseModel):
    conclusion: CheckConclusion
    title: str
    summary: str
    annotations: list[Annotation]


class PublishedReport(BaseModel):
    comment: Comment
    check_run: CheckRun | None
    verdict: str | None = None  # the verdict posted (the trusted one when judged)


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
    judge: Judge | None = None,
) -> PublishedReport:
    """Upsert the sticky comment and create the check run. `images(head_sha)`, when given, runs
    after the PR/commit check and returns ({report file: image URL} or None to keep the plot list,
    a note): the comment then shows the images (report/images.py).

    With `judge` (the job with write permissions), the report directory is untrusted input: only
    report.json's measured values are read, the gates and verdict are the judge's config's, the
    comment is rendered again from that data, and report.json, report.md and model_card.md in the
    directory are replaced by the trusted ones before anything is posted (so a register step that
    follows reads only those). Without it, report.md and the verdict are posted as they are (a
    report this process wrote itself)."""
    if judge is not None:
        return _publish_judged(forge, report_dir, pr, judge, workflow=workflow, check_name=check_name,
                               head_sha=head_sha, images=images)
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
    pull = _checked_pull(forge, pr, head_sha)
    markdown = markdown_path.read_text(encoding="utf-8")
    if images is not None:
        sha = head_sha or pull.head_sha
        if not sha:
            raise ForgeError(f"pull request #{pr} has no head sha: pass --head-sha")
        urls, note = images(sha)
        if urls is not None:
            markdown = embed_images(markdown, urls, note)
    return _post(forge, pull, pr, markdown, report, workflow=workflow, check_name=check_name,
                 head_sha=head_sha)


def _checked_pull(forge: Forge, pr: int, head_sha: str | None) -> PullRequest:
    pull = forge.get_pull_request(pr)
    if head_sha and pull.head_sha and pull.head_sha != head_sha:
        # The PR number may come from an untrusted artifact (a fork's workflow_run): only post on the
        # PR whose head is the commit the report was built from.
        raise ForgeError(
            f"pull request #{pr} is at {pull.head_sha[:12]}, not {head_sha[:12]}: refusing to post a "
            "report built from another commit (a stale run, or a PR number that does not belong to it)"
        )
    return pull


def _publish_judged(forge: Forge, report_dir: Path, pr: int, judge: Judge, *, workflow: str,
                    check_name: str | None, head_sha: str | None, images: ImagesStep | None
                    ) -> PublishedReport:
    from mlops_bot import redaction
    from mlops_bot.pipeline import trusted_report
    from mlops_bot.registry.model_card import render_model_card

    untrusted = trusted_report.read_report(report_dir)
    pull = _checked_pull(forge, pr, head_sha)
    judging, base_values = judge(pull, untrusted)
    report = trusted_report.rejudge(untrusted, judging, base_values)
    sha = head_sha or pull.head_sha
    if sha:  # the commit this job was told about, not the one the artifact names
        report = report.model_copy(update={
            "reproducibility": report.reproducibility.model_copy(update={"git_sha": sha})})
    markdown = redaction.redact(trusted_report.render(report, judging.config.model.positive_label))
    data = json.loads(report.model_dump_json())
    # What the steps after this one read: the trusted files only (the artifact's copies are replaced).
    for name in ("report.json", "report.md", "model_card.md"):
        (report_dir / name).unlink(missing_ok=True)  # a link planted in the artifact is not followed
    trusted_json = redaction.redact(report.model_dump_json(indent=2))
    (report_dir / "report.json").write_text(trusted_json, encoding="utf-8")
    (report_dir / "report.md").write_text(markdown, encoding="utf-8")
    label = f"(commit {sha[:8]})" if sha else ""
    card = render_model_card(judging.config, data, label)
    (report_dir / "model_card.md").write_text(card, encoding="utf-8")
    if images is not None:
        urls, note = images(head_sha or pull.head_sha)
        if urls is not None:
            markdown = embed_images(markdown, urls, note)
    return _post(forge, pull, pr, markdown, data, workflow=workflow, check_name=check_name, head_sha=head_sha)


def _post(forge: Forge, pull: PullRequest, pr: int, markdown: str, report: dict[str, Any], *, workflow: str,
          check_name: str | None, head_sha: str | None) -> PublishedReport:
    model = str(report.get("model") or "model")
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
    return PublishedReport(comment=comment, check_run=run, verdict=report.get("verdict"))
