"""`mlops-bot demo`: the whole lifecycle offline in a fresh directory."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from mlops_bot.errors import MlopsError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole lifecycle offline (git repo + bare origin, local forge, local model server)",
        description="Builds an example project in DIR (wiped first), opens pull requests, validates them "
        "and runs every later chapter; prints where everything is.",
    )
    parser.add_argument("--workdir", type=Path, default=Path("mlops-demo"), help="default: ./mlops-demo")
    parser.set_defaults(func=handle)


def prepare_workdir(workdir: Path) -> Path:
    """Wipe and recreate DIR, refusing paths where a slip would destroy something else."""
    target = workdir.resolve()
    if target == Path(target.anchor) or target == Path.home().resolve() or target == Path.cwd().resolve():
        raise MlopsError(f"refusing to wipe {target}: pass a dedicated --workdir such as ./mlops-demo")
    if target.exists() and not target.is_dir():
        raise MlopsError(f"--workdir {target} exists and is not a directory")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    return target


def handle(args: argparse.Namespace) -> int:
    from mlops_bot.demo import run_demo

    workdir = prepare_workdir(args.workdir)
    ctx = run_demo(workdir)
    ctx.say(f"\neverything is in {workdir}:")
    ctx.say(f"  repository        {ctx.repo}")
    ctx.say(f"  bare origin       {ctx.origin}")
    ctx.say(f"  local forge       {ctx.forge.root} (forge.json: PRs, comments, check runs, releases)")
    for key in ("base_report_dir", "head_report_dir", "worse_report_dir"):
        if key in ctx.state:
            ctx.say(f"  {key:17s} {ctx.state[key]}")
    return 0
