"""The registry CLI: agreement with `gto` on random registries (the contract the fast read path must
keep), minimal imports for the read commands, and the forge taken from `forge_from_env`."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.cli.registry import CONFIG_PATH
from mlops_bot.config import DEFAULT_CONFIG_PATH
from mlops_bot.registry.registry import Registry
from mlops_bot.registry.views import read_records
from registry.registry_synthetic import build_random_registry

GTO = str(Path(sys.executable).with_name("gto"))


def gto_out(repo: Path, *args: str) -> str:
    return subprocess.run([GTO, *args, "-r", str(repo)], check=True, capture_output=True, text=True).stdout


def ours(repo: Path, *args: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["registry", *args, "--repo", str(repo)])
    return code, buffer.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_registries_agree_with_gto(tmp_path: Path, seed: int) -> None:
    repo = tmp_path / "repo"
    names = build_random_registry(repo, seed)
    assert ours(repo, "show", "--json") == (0, gto_out(repo, "show", "--json"))
    assert ours(repo, "history", "--json") == (0, gto_out(repo, "history", "--json"))
    shown = json.loads(ours(repo, "show", "--json")[1])
    checked = [n for n in names if n in shown][:3]
    assert checked
    for name in checked:
        assert ours(repo, "show", name, "--json") == (0, gto_out(repo, "show", name, "--json")), name
        assert ours(repo, "show", name) == (0, gto_out(repo, "show", name)), name  # the same table


def test_one_model_reads_only_its_refs(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build_random_registry(repo, 4, models=12)
    everything = {r.tag for r in read_records(repo)}
    tags = {r.tag for r in read_records(repo, "model-1")}
    assert tags and all(t.startswith(("model-1@", "model-1#")) for t in tags)
    assert tags == {t for t in everything if t.startswith(("model-1@", "model-1#"))}
    # `model-10` shares the prefix `model-1` but is another model: not read.
    assert any(t.startswith("model-10") for t in everything)
    assert "model-0@v99.0.0" not in everything  # lightweight tag ignored
    assert "release-1.0" in everything  # annotated non-registry tags are read, then ignored by the state


def test_one_model_read_includes_stages_with_slashes(repo: Path) -> None:
    reg = Registry(repo)
    reg.register("churn")
    reg.assign("churn", "eu/prod", version="v0.0.1")
    reg.register("churn-eu", ref="HEAD")
    assert {r.tag for r in read_records(repo, "churn")} == {"churn@v0.0.1", "churn#eu/prod#1"}
    assert reg.stage_version("churn", "eu/prod") == "v0.0.1"
    assert ours(repo, "show", "churn", "--json") == (0, gto_out(repo, "show", "churn", "--json"))


def test_read_commands_import_only_the_read_side(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    build_random_registry(repo, 5, models=3)
    script = (
        "import contextlib, io, sys\n"
        "from mlops_bot.cli import main\n"
        "for args in (['show', '--json'], ['show', 'model-0', '--json'], ['history', '--json'],"
        " ['which', '--json']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        f"        main(['registry', *args, '--repo', {str(repo)!r}])\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    loaded = set(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True
                                ).stdout.split())
    assert "mlops_bot.registry.views" in loaded
    heavy = {"pydantic", "github", "httpx", "yaml", "tabulate", "pandas", "requests", "jwt", "dataclasses",
             "typing", "mlops_bot.config", "mlops_bot.forge", "mlops_bot.registry.registry"}
    assert not heavy & loaded


def test_help_names_the_config_path() -> None:
    assert CONFIG_PATH == DEFAULT_CONFIG_PATH


def _forge_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key in ("MLOPS_BOT_LOCAL_FORGE", "GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID",
                "MLOPS_BOT_APP_PRIVATE_KEY", "MLOPS_BOT_APP_PRIVATE_KEY_FILE", "GITHUB_REPOSITORY",
                "GITHUB_APP_ID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def test_cli_artifacts_go_through_forge_from_env(repo: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "report.json"  # any file: a model file is loaded to read its signature
    model.write_text('{"verdict": "pass"}')
    _forge_env(monkeypatch, MLOPS_BOT_LOCAL_FORGE=str(tmp_path / "forge"), GITHUB_REPOSITORY="acme/churn")
    code, out = ours(repo, "register", "churn", "--artifact", f"report.json={model}")
    assert code == 0 and "churn@v0.0.1" in out
    code, out = ours(repo, "download", "churn@v0.0.1", "--dest", str(tmp_path / "got"))
    assert code == 0
    assert (tmp_path / "got" / "report.json").read_text() == '{"verdict": "pass"}'


def test_cli_forge_errors_are_clear(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.skops"
    model.write_bytes(b"weights")
    # No forge configured: tags-only writes work, artifacts and downloads say what to set.
    _forge_env(monkeypatch)
    assert ours(repo, "register", "churn")[0] == 0
    assert ours(repo, "download", "churn@v0.0.1", "--dest", str(tmp_path / "got"))[0] == 2
    assert "MLOPS_BOT_LOCAL_FORGE" in capsys.readouterr().err
    # The App is configured with forge_from_env's variables (MLOPS_BOT_APP_*), not GITHUB_APP_ID.
    _forge_env(monkeypatch, MLOPS_BOT_APP_ID="123", GITHUB_REPOSITORY="acme/churn")
    assert ours(repo, "register", "churn", "--version", "v1.0.0", "--artifact", str(model))[0] == 2
    assert "MLOPS_BOT_APP_PRIVATE_KEY" in capsys.readouterr().err
    assert Registry(repo).latest_version("churn") == "v0.0.1"  # nothing half-written


def test_cli_show_history_which_text(repo: Path) -> None:
    reg = Registry(repo)
    reg.register("churn", actor="alice")
    reg.assign("churn", "dev", version="v0.0.1")
    code, out = ours(repo, "show")
    assert code == 0 and "churn" in out and "v0.0.1" in out and "#dev" in out
    code, out = ours(repo, "history")
    assert code == 0 and "churn#dev#1" in out and "churn@v0.0.1" in out
    code, out = ours(repo, "which")
    assert code == 0 and out.strip() == "churn v0.0.1 [dev]"


def test_cli_show_at_a_bad_time_is_a_one_line_error(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Registry(repo).register("churn")
    assert ours(repo, "show", "--at", "yesterday")[0] == 2
    assert "--at 'yesterday' is not an ISO time" in capsys.readouterr().err
    code, out = ours(repo, "show", "--at", "2999-01-01T00:00:00Z")
    assert code == 0 and "churn" in out
