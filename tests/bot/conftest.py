"""Fixtures for the bot tests; helpers live in bot_testkit.py (this folder goes on sys.path)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bot_testkit import World, copy_world, make_world


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("world-template"))


@pytest.fixture
def world(world_template: World, tmp_path: Path) -> World:
    """A fresh copy of the template world (building one takes git work; copying is cheap)."""
    return copy_world(world_template, tmp_path)


@pytest.fixture(scope="session")
def app_keys() -> tuple[str, str]:
    """A GitHub App's RSA key pair (PEM private key, PEM public key) for the emulator's App auth."""
    from github_emulator.app_keys import app_key_pair

    return app_key_pair()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL server for this test session (skipped, saying why, when not installed)."""
    from bot_testkit import free_port
    from postgres_server import PostgresServer

    try:
        server = PostgresServer(free_port()).start()
    except FileNotFoundError as missing:
        pytest.skip(str(missing))
    try:
        yield server
    finally:
        server.stop()
