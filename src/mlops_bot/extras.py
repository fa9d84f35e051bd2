"""Which optional extra (`pip install 'mlops-bot[serve]'`, ...) provides a missing package.

The core install is what the pull-request path needs; the model server, the webhook bot and the
deploy targets are extras (pyproject.toml). A command of an extra that is not installed fails on its
first import: `missing_extra` turns that `ModuleNotFoundError` into one actionable line, reading the
extras from the installed package's own metadata so pyproject.toml stays the one home of the split.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re

from packaging.requirements import Requirement

from mlops_bot.errors import MissingExtraError

DISTRIBUTION = "mlops-bot"
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")
# Extras that bundle others ("all", "dev") are never the one to suggest.
_BUNDLES = frozenset({"all", "dev"})


def _module_name(distribution: str) -> str:
    """The import name of a distribution, as our extras' packages spell it (prometheus-client ->
    prometheus_client)."""
    return re.sub(r"[-.]+", "_", distribution).lower()


def extras_by_module(requires: list[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Import name -> the extras (sorted) that install it, from the Requires-Dist lines."""
    if requires is None:
        try:
            requires = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            return {}
    found: dict[str, set[str]] = {}
    for line in requires:
        requirement = Requirement(line)
        marker = str(requirement.marker or "")
        for extra in _EXTRA_MARKER.findall(marker):
            if extra not in _BUNDLES:
                found.setdefault(_module_name(requirement.name), set()).add(extra)
    return {module: tuple(sorted(extras)) for module, extras in found.items()}


def missing_extra(
    error: ModuleNotFoundError, requires: list[str] | None = None
) -> MissingExtraError | None:
    """The actionable error for a package of an extra; None when `error` is not about one."""
    top = (error.name or "").split(".")[0]
    extras = extras_by_module(requires).get(top)
    if not extras:
        return None
    choice = " or ".join(f"pip install '{DISTRIBUTION}[{extra}]'" for extra in extras)
    return MissingExtraError(
        f"this command needs the Python package {top!r}, which the core install leaves out: {choice}"
    )
