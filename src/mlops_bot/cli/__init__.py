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
    "models",
    "demo",
    "bot",
    "registry",
    "analysis",
    "forge",
    "monitor",
    "deploy",
    "init",
)


# Which module owns each top-level command, so `mlops-bot registry show` imports only the
# registry's CLI (and not pandas, FastAPI, ...): start-up time is most of a quick command's cost.
# tests/core/test_cli.py checks this table against what the modules really register.
COMMAND_OWNERS: dict[str, str] = {
    "validate": "validate",
    "models": "models",
    "demo": "demo",
    "bot": "bot",
    "registry": "registry",
    "drift": "analysis",
    "fairness": "analysis",
    "data-check": "analysis",
    "comment": "forge",
    "dispatch": "forge",
    "monitor": "monitor",
    "feedback": "monitor",
    "retrain": "monitor",
    "deploy": "deploy",
    "serve": "deploy",
    "init": "init",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: only the owning module of a known command is imported; help and
    unknown commands get every module."""
    parser = argparse.ArgumentParser(
        prog="mlops-bot",
        description="GitHub-native MLOps: validate models on PRs, a git-tag model registry, "
        "canary deploys and drift monitoring.",
    )
    parser.add_argument("--version", action="version", version=f"mlops-bot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    first = argv[0] if argv else None
    owner = COMMAND_OWNERS.get(first) if first else None
    modules = (owner,) if owner in COMMAND_MODULES else COMMAND_MODULES
    for name in modules:
        importlib.import_module(f"mlops_bot.cli.{name}").register(sub)
    return parser


def _said(error: Exception) -> str:
    """An error as we print it: known secrets masked (a training command's output, a git message)."""
    from mlops_bot.redaction import redact  # imported on the error path only: `registry show` stays light

    return redact(str(error))


def _annotate(error: MlopsError) -> None:
    """Emit a GitHub Actions error annotation so the failure shows on the file in the PR."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    message = _said(error).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if isinstance(error, ConfigError):
        props = f"file={error.path}" + (f",line={error.line}" if error.line else "")
        print(f"::error {props}::{message}")
    else:
        print(f"::error::{message}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MlopsError as error:
        _annotate(error)
        print(f"mlops-bot: error: {_said(error)}", file=sys.stderr)
        return error.exit_code
    except ModuleNotFoundError as error:
        # A command of an extra (serve, bot, kubernetes, docker) run on the core install. Imported
        # here: `registry show` must not pay for packaging's import.
        from mlops_bot.extras import missing_extra

        missing = missing_extra(error)
        if missing is None:
            raise
        _annotate(missing)
        print(f"mlops-bot: error: {missing}", file=sys.stderr)
        return missing.exit_code
    except KeyboardInterrupt:
        print("mlops-bot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`mlops-bot registry show | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
