"""Our `registry show/history --json` print exactly what `gto` prints, on registries written by us
and by gto itself (gto run as a subprocess on the same repository)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_bot.cli import main
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import commit

GTO = str(Path(sys.executable).with_name("gto"))
pytestmark = pytest.mark.slow


def gto_out(repo: Path, *args: str) -> str:
    return subprocess.run([GTO, *args, "-r", str(repo)], check=True, capture_output=True, text=True).stdout


def ours(repo: Path, *args: str) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["registry", *args, "--repo", str(repo), "--json"]) == 0
    return buffer.getvalue()


def assert_agree(repo: Path, names: list[str]) -> None:
    assert ours(repo, "show") == gto_out(repo, "show", "--json")
    assert ours(repo, "history") == gto_out(repo, "history", "--json")
    for name in names:
        assert ours(repo, "show", name) == gto_out(repo, "show", name, "--json")


def test_registry_written_by_us(repo: Path) -> None:
    reg = Registry(repo)
    reg.register("churn", actor="alice", trailers={"Pull-Request": "4"})
    reg.assign("churn", "dev", version="v0.0.1")
    commit(repo, "better model")
    reg.register("churn", bump="minor")
    reg.assign("churn", "staging", version="v0.1.0")
    reg.assign("churn", "production", version="v0.1.0")
    reg.unassign("churn", "dev", version="v0.0.1")
    reg.deregister("churn", "v0.0.1")
    reg.register("team:fraud", ref="HEAD~1")
    reg.assign("team:fraud", "production", version="v0.0.1")
    commit(repo, "fraud v2")
    reg.assign("team:fraud", "production")  # registers v0.0.2 on the fly
    reg.register("old")
    reg.deprecate("old")
    assert_agree(repo, ["team:fraud"])


def test_registry_written_by_gto(repo: Path) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="g", GIT_AUTHOR_EMAIL="g@x", GIT_COMMITTER_NAME="g",
               GIT_COMMITTER_EMAIL="g@x")

    def gto(*args: str) -> None:
        subprocess.run([GTO, *args], cwd=repo, check=True, capture_output=True, env=env)

    gto("register", "model", "HEAD", "--version", "v1.0.0")
    gto("assign", "model", "--version", "v1.0.0", "--stage", "dev")
    commit(repo, "second")
    gto("register", "model", "--bump-major")
    gto("assign", "model", "--version", "v2.0.0", "--stage", "prod")
    gto("assign", "nlp:bert", "HEAD", "--stage", "dev")
    run = subprocess.run(["git", "-C", str(repo), "tag", "-l"], capture_output=True, text=True, check=True)
    assert "nlp=bert#dev#1" in run.stdout.split()
    assert_agree(repo, ["model"])
    # And we keep writing on top of gto's tags with the same counters.
    assert Registry(repo).assign("model", "staging", version="v2.0.0").tag == "model#staging#3"
    assert ours(repo, "show") == gto_out(repo, "show", "--json")
