"""The core install (no extras) runs the pull-request path; a command of a missing extra says which
extra to install, in one line, with exit code 2."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.errors import MissingExtraError
from mlops_bot.extras import extras_by_module, missing_extra

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "credit-risk"
# The packages each extra exists for: none may come with the core install.
EXTRA_ONLY = ("fastapi", "uvicorn", "starlette", "prometheus_client", "kubernetes", "docker")

REQUIRES = [
    "pandas>=2.1",
    'fastapi>=0.110; extra == "serve"',
    'uvicorn>=0.29; extra == "serve"',
    'uvicorn>=0.29; extra == "bot"',
    'prometheus-client>=0.20; extra == "bot"',
    'mlops-bot[serve,bot]; extra == "dev"',
    'pytest>=8; extra == "dev"',
]


def test_extras_are_read_from_the_requirements() -> None:
    assert extras_by_module(REQUIRES) == {
        "fastapi": ("serve",),
        "uvicorn": ("bot", "serve"),
        "prometheus_client": ("bot",),
    }


def test_missing_extra_names_the_install_command() -> None:
    missing = ModuleNotFoundError("No module named 'uvicorn.config'", name="uvicorn.config")
    error = missing_extra(missing, REQUIRES)
    assert isinstance(error, MissingExtraError)
    assert "'uvicorn'" in str(error)
    assert "pip install 'mlops-bot[bot]' or pip install 'mlops-bot[serve]'" in str(error)


def test_core_and_unknown_modules_are_not_extras() -> None:
    assert missing_extra(ModuleNotFoundError("x", name="pandas"), REQUIRES) is None
    assert missing_extra(ModuleNotFoundError("x", name="nosuchthing"), REQUIRES) is None
    assert missing_extra(ModuleNotFoundError("x"), REQUIRES) is None


def test_installed_metadata_declares_every_extra() -> None:
    """The installed package's own metadata (pyproject.toml) maps each extra-only package to its extra."""
    table = extras_by_module()
    assert table["fastapi"] == ("serve",)
    assert set(table["uvicorn"]) == {"bot", "serve"}
    assert table["kubernetes"] == ("kubernetes",)
    assert table["docker"] == ("docker",)


def _route_to(monkeypatch, handler) -> None:  # type: ignore[no-untyped-def]
    """Make whatever command main() parses run `handler`."""
    real_parse = argparse.ArgumentParser.parse_args

    def parse(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        parsed = real_parse(self, args, namespace)
        parsed.func = handler
        return parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)


def test_cli_turns_a_missing_extra_into_one_line(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    def without_starlette(_args: object) -> int:
        raise ModuleNotFoundError("No module named 'starlette'", name="starlette")

    _route_to(monkeypatch, without_starlette)
    assert main(["bot", "serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "mlops-bot[bot]" in err[0] and "mlops-bot[serve]" in err[0]


def test_cli_reraises_other_missing_modules(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _route_to(monkeypatch, lambda _args: __import__("mlops_bot_no_such_module"))
    with pytest.raises(ModuleNotFoundError):
        main(["registry", "show"])


def _uv(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uv", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.mark.slow
def test_core_install_runs_the_pull_request_path(tmp_path: Path) -> None:
    """A fresh venv with `pip install mlops-bot` (no extras) validates the example, and the commands
    of the extras fail with the install line."""
    venv = tmp_path / "venv"
    made = _uv("venv", "-q", "--python", sys.executable, str(venv))
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = _uv("pip", "install", "-q", "--python", str(python), str(REPO))
    assert installed.returncode == 0, installed.stderr
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util as u, sys; "
         f"print(','.join(m for m in {EXTRA_ONLY!r} if u.find_spec(m)))"],
        capture_output=True, text=True, check=True,
    )
    assert probe.stdout.strip() == "", f"the core install pulled in {probe.stdout.strip()}"

    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLOPS_"))}
    bot = str(venv / "bin" / "mlops-bot")
    run = subprocess.run(
        [bot, "validate", "--config", ".github/mlops.yml", "--output", "out", "--quiet"],
        cwd=project, capture_output=True, text=True, env=env, check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "credit-risk: pass" in run.stdout
    report = (project / "out" / "report.md").read_text()
    assert "roc_auc" in report

    served = subprocess.run(
        [bot, "serve", "credit-risk", "--model", "out/model.skops", "--port", "0"],
        cwd=project, capture_output=True, text=True, env=env, check=False, timeout=120,
    )
    assert served.returncode == 2, served.stdout + served.stderr
    assert "pip install 'mlops-bot[serve]'" in served.stderr
    assert "Traceback" not in served.stderr
