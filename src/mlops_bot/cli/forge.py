"""`mlops-bot comment` (sticky PR comment + check run from a report directory) and
`mlops-bot dispatch EVENT` (a `repository_dispatch`, the one event made with GITHUB_TOKEN that
still starts workflows)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from mlops_bot.errors import ForgeError


def register(subparsers: Any) -> None:
    comment = subparsers.add_parser(
        "comment", help="upsert the sticky PR comment and the check run from a report"
    )
    comment.add_argument("--report-dir", required=True, type=Path, help="directory written by `validate`")
    comment.add_argument("--pr", required=True, type=int, help="pull request number")
    comment.add_argument("--workflow", default="mlops-pr", help="names the sticky comment (default mlops-pr)")
    comment.add_argument("--check-name", default=None, help="check run name (default 'mlops-bot / MODEL')")
    comment.add_argument("--head-sha", default=None, help="commit for the check run (default: the PR head)")
    comment.add_argument(
        "--images",
        choices=("branch", "artifact", "none"),
        default=None,
        help="how the comment shows the report's images (default: report.images of --config, else artifact)",
    )
    comment.add_argument(
        "--config",
        type=Path,
        default=Path(".github/mlops.yml"),
        help="the base branch's config, for report.* (default .github/mlops.yml)",
    )
    comment.add_argument(
        "--repo-dir",
        type=Path,
        default=Path("."),
        help="checkout of the base repository the assets branch is pushed from",
    )
    comment.add_argument("--assets-remote", default="origin", help="git remote of the assets branch")
    comment.add_argument(
        "--model", default=None,
        help="whose report section of --config applies (default: the report's model, when there are several)",
    )
    comment.add_argument(
        "--untrusted-report",
        action="store_true",
        help="the report comes from another job (a PR's artifact): judge it again from its numbers with "
        "the base branch's config read from git in --repo-dir (the PR head's config too, to see what it "
        "changes), render the comment from data, and replace report.json/report.md/model_card.md",
    )
    comment.set_defaults(func=_comment)

    dispatch = subparsers.add_parser("dispatch", help="send a repository_dispatch event")
    dispatch.add_argument("event", help="event_type, e.g. mlops-retrain")
    dispatch.add_argument("--payload", default="{}", help="client_payload as a JSON object (at most 10 keys)")
    dispatch.set_defaults(func=_dispatch)


def _comment(args: argparse.Namespace) -> int:
    from mlops_bot.forge.publish import publish_report
    from mlops_bot.forge.select import forge_from_env

    forge = forge_from_env(os.environ)
    result = publish_report(
        forge,
        args.report_dir,
        args.pr,
        workflow=args.workflow,
        check_name=args.check_name,
        head_sha=args.head_sha,
        images=_images_step(args, forge),
        judge=_judge(args, forge) if args.untrusted_report else None,
    )
    print(f"comment {result.comment.id} {result.comment.html_url}".rstrip())
    if result.check_run is not None:
        print(f"check run {result.check_run.id} {result.check_run.conclusion}")
    return 0


def _judge(args: argparse.Namespace, forge: Any) -> Any:
    """The trusted job's judge: the base branch's config from git (the remote-tracking branch the PR
    merges into, else the checked-out file at --config), the PR head's own config from git, a
    maintainer's `/accept-gates` from the bot's own comments, and the base branch's
    `baseline.metrics_file` when the report compared with a metrics file."""
    from mlops_bot.config import config_exists, load_models
    from mlops_bot.pipeline import base_tree
    from mlops_bot.pipeline.base_gates import Judging, accepted_at, judge_by_base
    from mlops_bot.pipeline.baseline import read_base_metrics

    repo = args.repo_dir
    config_path = args.config
    if config_path.is_absolute():
        config_path = Path(os.path.relpath(config_path.resolve(), repo.resolve()))
    relative = base_tree.repo_path(str(config_path))

    def judge(pull: Any, report: Any) -> tuple[Judging, dict[str, float] | None]:
        # The model the report is about: --model, else the report's name, which only picks among the
        # models the trusted configs declare (rejudge refuses a report of another model).
        name, by_name = args.model or report.model, args.model is not None
        base_commit = next(
            (c for c in (base_tree.commit_of(repo, f"refs/remotes/{args.assets_remote}/{pull.base_ref}"),
                         base_tree.commit_of(repo, f"refs/heads/{pull.base_ref}")) if c),
            None,
        )
        if base_commit is not None:
            base_models = base_tree.models_at(repo, base_commit, relative)
        else:  # the checkout itself is the trusted default branch
            _warning(f"the base branch {pull.base_ref!r} is not in {repo}: judging with {args.config}")
            base_models = load_models(args.config, root=repo) if config_exists(args.config) else None
        base = base_tree.model_named(base_models, name, by_name or len(base_models or []) > 1)
        head = args.head_sha or pull.head_sha
        head_commit = base_tree.commit_of(repo, head) if head else None
        own_models = base_tree.models_at(repo, head_commit, relative) if head_commit else None
        own = base_tree.model_named(own_models, name, by_name or len(own_models or []) > 1)
        if base is None and own is None:
            which = f"a model {name!r} in {relative}" if by_name or base_models or own_models else relative
            raise ForgeError(
                f"neither the base branch {pull.base_ref!r} nor the PR head has {which}: nothing to judge "
                "the report by (fetch the PR head into the checkout first)"
            )
        if own is None:
            assert base is not None
            judging = Judging(base, (), f"judged by {pull.base_ref}'s gates (the PR head's config was not "
                                        "available to compare)")
        else:
            bodies = [c.body for c in forge.list_comments(pull.number) if forge.is_own_comment(c)]
            accepted = bool(head) and accepted_at(bodies, head)
            judging = judge_by_base(own, base, pull.base_ref, accepted=accepted)
        values = None
        metrics_file = judging.config.baseline.metrics_file
        if report.baseline.source == "metrics_file" and metrics_file and base_commit is not None:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                found = base_tree.metrics_file_at(repo, base_commit, metrics_file, Path(tmp) / "metrics.json")
                values = read_base_metrics(found) if found is not None else {}
        return judging, values

    return judge


def _images_step(args: argparse.Namespace, forge: Any) -> Any:
    """The images step of `comment` for the configured mode (None: keep the plot list as it is)."""
    from mlops_bot.forge.assets_branch import branch_images_step

    section = _report_section(args)
    mode = args.images or section.images
    if mode == "artifact":
        return None
    if mode == "none":
        return lambda sha: ({}, "")
    local = os.environ.get("MLOPS_BOT_LOCAL_FORGE", "").strip()
    server = (
        f"file://{Path(local).resolve()}"
        if local
        else (os.environ.get("GITHUB_SERVER_URL", "").strip() or "https://github.com")
    )
    repository = os.environ.get("GITHUB_REPOSITORY", "").strip() or getattr(forge, "repo", "")
    if not repository:
        raise ForgeError("report.images is 'branch' but GITHUB_REPOSITORY is not set (owner/name)")

    return branch_images_step(
        forge,
        args.repo_dir,
        args.report_dir,
        args.pr,
        server=server,
        repository=repository,
        remote=args.assets_remote,
        branch=section.assets_branch,
        keep=section.keep_commits_per_pr,
        warn=_warning,
    )


def _report_section(args: argparse.Namespace) -> Any:
    """The `report` section of the model the report is about (several models: `--model`, else the
    report's own model name, which only picks among the trusted config's models)."""
    from mlops_bot.config import ReportSection, config_exists, load_models

    if not config_exists(args.config):
        return ReportSection(images="artifact")
    models = load_models(args.config)
    name = args.model
    if name is None and len(models) > 1:
        try:
            name = json.loads((args.report_dir / "report.json").read_text(encoding="utf-8")).get("model")
        except (OSError, ValueError, AttributeError):
            name = None
    if args.model is not None and all(config.model.name != args.model for config in models):
        from mlops_bot.config import select_model

        select_model(models, args.model, str(args.config))  # one line naming the models
    return next((config.report for config in models if config.model.name == name), models[0].report)


def _warning(text: str) -> None:
    """A warning on stderr, and as an annotation when running in GitHub Actions."""
    import sys

    from mlops_bot.redaction import redact

    line = " ".join(redact(text).split())  # one line, secrets masked
    prefix = "::warning::" if os.environ.get("GITHUB_ACTIONS") == "true" else "mlops-bot: warning: "
    sys.stderr.write(f"{prefix}{line}\n")


def _dispatch(args: argparse.Namespace) -> int:
    from mlops_bot.forge.select import forge_from_env

    try:
        payload = json.loads(args.payload)
    except ValueError as error:
        raise ForgeError(f"--payload: not valid JSON ({error})") from error
    if not isinstance(payload, dict) or len(payload) > 10:
        raise ForgeError("--payload must be a JSON object with at most 10 top-level keys (GitHub's limit)")
    forge_from_env(os.environ).repository_dispatch(args.event, payload)
    print(f"dispatched {args.event}")
    return 0
