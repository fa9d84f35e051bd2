"""`mlops-bot models`: the repository's models as JSON, optionally only those a change touches,
for a workflow's job matrix (`strategy.matrix.include: ${{ fromJSON(...) }}`).

Each row is `{"model": NAME, "slug": NAME-AS-ONE-WORD, "config": FILE, "artifact": NAME}`: the slug
is the name as one word (a model name may hold ':' and '/'); `artifact` names the workflow artifact of
the model's report: `mlops-report` in a repository of one model (as before several models existed),
`mlops-report-SLUG` with several. Which models a change touches is `config.paths.changed_models`
(each model's `model.paths`, and the file declaring it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from mlops_bot.config import DEFAULT_CONFIG_PATH
from mlops_bot.errors import MlopsError

REPORT_ARTIFACT = "mlops-report"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the repository's models as JSON (only those a change touches, with --changed-from)",
        description="Prints a JSON list of {model, slug, config, artifact} rows, in config order. With "
        "--changed-from BASE (git diff BASE...HEAD in --repo) or --changed PATH... (or --changed-file FILE, "
        "one path a line), only the models those paths touch: a path matched by the model's model.paths, "
        "or the file that declares it; a model without paths is touched by every change.",
    )
    parser.add_argument("--config", default=DEFAULT_CONFIG_PATH, help="path to mlops.yml")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the git repository (--changed-from)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--changed-from", metavar="BASE", help="a commit: the change is git diff BASE...HEAD")
    which.add_argument("--changed", nargs="+", metavar="PATH", help="the changed repository paths")
    which.add_argument("--changed-file", type=Path, metavar="FILE", help="the changed paths, one a line")
    parser.add_argument("--head", default="HEAD", help="with --changed-from: the head commit (default HEAD)")
    parser.add_argument("--model", help="only this model (an error naming the models when there is none)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from mlops_bot.config import changed_models, load_models, select_model
    from mlops_bot.registry.tags import name_slug

    every = load_models(args.config)
    changed = _changed_paths(args)
    models = changed_models(every, changed) if changed is not None else every
    if args.model:
        chosen = select_model(every, args.model, str(args.config))
        models = [config for config in models if config is chosen]
    rows = []
    for config in models:
        slug = name_slug(config.model.name)
        artifact = REPORT_ARTIFACT if len(every) == 1 else f"{REPORT_ARTIFACT}-{slug}"
        rows.append({"model": config.model.name, "slug": slug, "config": config.source, "artifact": artifact})
    print(json.dumps(rows))
    return 0


def _changed_paths(args: argparse.Namespace) -> list[str] | None:
    if args.changed is not None:
        return list(args.changed)
    if args.changed_file is not None:
        try:
            text = args.changed_file.read_text(encoding="utf-8")
        except OSError as error:
            raise MlopsError(f"cannot read {args.changed_file}: {error.strerror}") from None
        return [line.strip() for line in text.splitlines() if line.strip()]
    if args.changed_from is None:
        return None
    for ref in (args.changed_from, args.head):
        if ref.startswith("-"):
            raise MlopsError(f"{ref!r} is not a commit (it starts with '-')")
    result = subprocess.run(
        ["git", "-C", str(args.repo), "diff", "--name-only", "--no-renames", "-z",
         f"{args.changed_from}...{args.head}", "--"],
        capture_output=True, check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        raise MlopsError(f"cannot list the changed files ({args.changed_from}...{args.head}): {detail}; "
                         "fetch the base commit first (actions/checkout with fetch-depth: 0)")
    return [name for name in result.stdout.decode("utf-8", "surrogateescape").split("\0") if name]
