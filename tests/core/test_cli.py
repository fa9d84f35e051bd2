"""The CLI's lazy command table must match what each command module really registers."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from mlops_bot.cli import COMMAND_MODULES, COMMAND_OWNERS, main


def _registered(module: str) -> set[str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    importlib.import_module(f"mlops_bot.cli.{module}").register(sub)
    return set(sub.choices)


def test_owner_table_matches_registrations() -> None:
    seen: dict[str, str] = {}
    for module in COMMAND_MODULES:
        for command in _registered(module):
            assert command not in seen, f"{command} registered by {seen.get(command)} and {module}"
            seen[command] = module
    for command, module in seen.items():
        assert COMMAND_OWNERS.get(command) == module, f"add {command!r}: {module!r} to COMMAND_OWNERS"


def test_quick_command_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from mlops_bot.cli import build_parser\n"
        "build_parser(['registry', 'show'])\n"
        "print(','.join(m for m in ('pandas', 'fastapi', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_command_prints_help_and_exits_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
