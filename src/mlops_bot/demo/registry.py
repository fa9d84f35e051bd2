"""Demo chapter "registry": register main's validated baseline, with its artifacts, and show it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_bot.config import load_config
from mlops_bot.demo.project import MODEL_NAME
from mlops_bot.registry.artifacts import KNOWN_ASSETS
from mlops_bot.registry.registry import Registry

if TYPE_CHECKING:
    from mlops_bot.demo import DemoContext


def run(ctx: DemoContext) -> None:
    ctx.chapter("Registry: register the baseline as a version with its artifacts")
    config = load_config(ctx.state.get("config_path", ctx.repo / ".github" / "mlops.yml"),
                         model=ctx.state.get("model_name", MODEL_NAME))
    name = config.model.name
    base_dir = Path(ctx.state["base_report_dir"])
    report = json.loads((base_dir / "report.json").read_text()) if (base_dir / "report.json").exists() else {}
    # validate wrote the model card beside the report: every artifact comes from that one run.
    files = {n: base_dir / n for n in KNOWN_ASSETS if (base_dir / n).exists()}
    registry = Registry(ctx.repo, forge=ctx.forge, policy=config.registry)
    ref = ctx.state.get("main_sha", "main")
    verdict = report.get("verdict", "pass")
    event = registry.register(name, ref=ref, artifacts=files, push=True, actor=ctx.forge.actor,
                              trailers={"Verdict": verdict})
    ctx.say(f"registered {event.tag} at {event.commit[:8]} and pushed it; release assets: "
            f"{', '.join(sorted([*event.checksums, 'SHA256SUMS']))}")
    first_stage = config.registry.stages[0]
    assigned = registry.assign(name, first_stage, version=event.version, actor=ctx.forge.actor, push=True)
    ctx.say(f"assigned {first_stage}: {assigned.tag}")
    ctx.say("registry (same JSON as `gto show --json`):")
    ctx.say(json.dumps(registry.show(), indent=4))
    ctx.state["registry_version"] = event.version
    ctx.state["registry_tag"] = event.tag
