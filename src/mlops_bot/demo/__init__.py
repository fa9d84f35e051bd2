"""`mlops-bot demo`: the whole lifecycle offline, on one machine, through the real code paths.

The story is told in chapters, one module each in this package, run in order. Each chapter is a
`run(ctx: DemoContext) -> None` function built only from public functions of the domain packages;
chapters hand results to later ones through `ctx.state`.
"""

from __future__ import annotations

import importlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_bot.forge.local import LocalForge

# Module names in mlops_bot.demo, in story order.
CHAPTERS: tuple[str, ...] = (
    "project",
    "pull_request",
    "registry",
    "promote",
    "rollout",
    "monitor",  # keep last: it follows the rollout
)


@dataclass
class DemoContext:
    workdir: Path
    repo: Path  # the working clone the "developer" uses
    origin: Path  # bare repository standing in for GitHub's copy
    forge: LocalForge  # file-backed stand-in for GitHub's API
    out: TextIO = sys.stdout
    state: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def say(self, message: str = "") -> None:
        print(message, file=self.out, flush=True)

    def chapter(self, title: str) -> None:
        elapsed = time.monotonic() - self.started
        self.say(f"\n== {title}  [{elapsed:5.1f}s]")


def run_demo(workdir: str | Path, out: TextIO = sys.stdout) -> DemoContext:
    """Run every chapter in order; returns the context so tests can inspect what was produced."""
    root = Path(workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(
        workdir=root,
        repo=root / "repo",
        origin=root / "origin.git",
        forge=LocalForge(root / "forge", repo="demo/credit-risk", actor="alice"),
        out=out,
    )
    for name in CHAPTERS:
        importlib.import_module(f"mlops_bot.demo.{name}").run(ctx)
    ctx.chapter("Done")
    return ctx
