"""The `mlops-bot` command line: argument parsing only.

Each command group lives in its own module here and exposes `register(subparsers)`; the handler it
sets (`func`) calls one function of a domain package and returns the exit code. Errors a user can
fix (`MlopsError`) become one clear line and exit code 2; inside GitHub Actions they also become a
workflow annotation pointing at the file and line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from mlops_bot import __version__
from mlops_bot.errors import ConfigError, MlopsError

# One module per command group; each registers its own subcommands.
COMMAND_MODULES: tuple[str, ...] = (
    "validate",
    "demo",
    "bot",
    "registry",
    "analysis",
    "forge",
    "monitor",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-bot",
        description="GitHub-native MLOps: validate models on PRs, a git-tag model registry, "
        "canary deploys and drift monitoring.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-bot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"mlops_bot.cli.{name}").register(sub)
    return parser


def _annotate(error: MlopsError) -> None:
    """Emit a GitHub Actions error annotation so the failure shows on the file in the PR."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    message = str(error).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if isinstance(error, ConfigError):
        props = f"file={error.path}" + (f",line={error.line}" if error.line else "")
        print(f"::error {props}::{message}")
    else:
        print(f"::error::{message}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MlopsError as error:
        _annotate(error)
        print(f"mlops-bot: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("mlops-bot: interrupted", file=sys.stderr)
        return 130
