"""`forge_from_env` loads the GitHub client (PyGithub, PyJWT) only when GitHub is chosen: the demo and
local runs never import it, and a GitHub run without it gets one actionable line, not a traceback.

Each case runs in a fresh interpreter: this test process has long imported `github` through others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlops_bot.forge.local import LocalForge

GITHUB_MODULES = ("github", "jwt")
# Prints which of GITHUB_MODULES the code before it loaded, as JSON on the last line.
PROBE = (
    "\nimport json, sys\n"
    f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({GITHUB_MODULES!r}))))\n"
)


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "MLOPS_BOT_"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, **env}, check=False, timeout=120)


def _loaded(run: subprocess.CompletedProcess[str]) -> list[str]:
    assert run.returncode == 0, run.stdout + run.stderr
    return list(json.loads(run.stdout.strip().splitlines()[-1]))


def test_the_local_forge_path_never_imports_the_github_client(tmp_path: Path) -> None:
    env = {"MLOPS_BOT_LOCAL_FORGE": str(tmp_path), "GITHUB_REPOSITORY": "acme/credit"}
    code = """
from mlops_bot.cli import main
from mlops_bot.forge.base import sticky_marker
from mlops_bot.forge.select import forge_from_env

forge = forge_from_env()
pr = forge.create_pull_request("Retrain", head="feature", base="main", head_sha="a" * 40)
forge.upsert_sticky_comment(pr.number, sticky_marker("mlops-pr", "credit"), "report")
assert main(["dispatch", "mlops-retrain", "--payload", '{"model": "credit"}']) == 0
""" + PROBE
    assert _loaded(_run(code, env)) == []
    forge = LocalForge(tmp_path, repo="acme/credit")
    assert [d["client_payload"] for d in forge.dispatches()] == [{"model": "credit"}]
    assert forge.list_comments(1)[0].body.endswith("report")


def test_the_github_path_does_import_it() -> None:
    """The probe sees the client when GitHub is chosen (no request is made by building the forge)."""
    env = {"GITHUB_TOKEN": "ghp_x", "GITHUB_REPOSITORY": "acme/credit", "GITHUB_API_URL": "http://127.0.0.1:9"}
    code = """
from mlops_bot.forge.select import forge_from_env

assert type(forge_from_env()).__name__ == "GitHubForge"
""" + PROBE
    assert set(_loaded(_run(code, env))) == set(GITHUB_MODULES)


def test_a_missing_github_client_is_one_actionable_line() -> None:
    """PyGithub absent (hidden from the import system): the CLI names the package and the install."""
    env = {"GITHUB_TOKEN": "ghp_x", "GITHUB_REPOSITORY": "acme/credit"}
    code = """
import sys
sys.modules["github"] = None  # what `import github` sees when PyGithub is not installed
from mlops_bot.cli import main
sys.exit(main(["dispatch", "mlops-retrain"]))
"""
    run = _run(code, env)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "'github'" in lines[0] and "pip install" in lines[0] and "MLOPS_BOT_LOCAL_FORGE" in lines[0]
