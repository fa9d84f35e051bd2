"""Real git repositories for registry tests: a working clone with a bare origin."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from registry.registry_gitrepos import commit, run_git


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


@pytest.fixture
def repo(tmp_path: Path, origin: Path) -> Path:
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    run_git(work, "config", "user.name", "dev")
    run_git(work, "config", "user.email", "dev@example.com")
    run_git(work, "remote", "add", "origin", str(origin))
    commit(work, "first")
    run_git(work, "push", "-q", "origin", "main")
    return work
