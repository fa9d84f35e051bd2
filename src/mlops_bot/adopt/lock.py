"""The setup action's dependency lock: `actions/setup/constraints.txt`, the versions `uv pip compile`
resolved for the core install and the runtime extras the workflows use, for every Python the package
supports (`--universal`). The setup action installs with `--constraint` on it and keys its
dependency cache on its hash, so a job installs exactly what was resolved when the lock was written,
and the cache changes exactly when the lock does.

The file's first line records a digest of the dependency declarations it was resolved from
(`declared_digest`): the test that keeps the lock honest compares it with pyproject.toml, so a changed
requirement without a new lock fails. Regenerate with `python -m mlops_bot.adopt.lock` (needs `uv`
and the package index), or `make lock`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

# What the workflows install: the core, and the extras the templates and actions ask for.
LOCKED_EXTRAS: tuple[str, ...] = ("serve", "bot", "kubernetes", "docker")
MIN_PYTHON = "3.11"
LOCK_PATH = Path("actions") / "setup" / "constraints.txt"
DIGEST_PREFIX = "# mlops-bot dependency digest: "


def declared(pyproject: str) -> list[str]:
    """The requirements the lock covers, in a stable order: the core dependencies, then each locked
    extra's, each as written in pyproject.toml."""
    project = tomllib.loads(pyproject)["project"]
    extras = project.get("optional-dependencies", {})
    lines = [f"core: {r}" for r in project.get("dependencies", [])]
    lines += [f"python: {project.get('requires-python', '')}"]
    for extra in LOCKED_EXTRAS:
        lines += [f"{extra}: {r}" for r in extras.get(extra, [])]
    return lines


def declared_digest(pyproject: str) -> str:
    return hashlib.sha256("\n".join(declared(pyproject)).encode()).hexdigest()[:16]


def compile_lock(root: Path, uv: str = "uv") -> str:
    """Resolve the lock with `uv pip compile` (network: the package index) and return its text."""
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    command = [uv, "pip", "compile", "pyproject.toml", "--universal", "--python-version", MIN_PYTHON,
               "--no-header", "--no-annotate", "--quiet",
               *(part for extra in LOCKED_EXTRAS for part in ("--extra", extra))]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"uv pip compile failed: {done.stderr.strip()}")
    header = [
        f"{DIGEST_PREFIX}{declared_digest(pyproject)}",
        "# Written by `python -m mlops_bot.adopt.lock` (uv pip compile --universal, core + "
        f"{', '.join(LOCKED_EXTRAS)}); the setup action installs with --constraint on this file.",
    ]
    return "\n".join(header) + "\n" + done.stdout


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0]) if argv else Path.cwd()
    uv = str(Path(sys.executable).with_name("uv")) if Path(sys.executable).with_name("uv").exists() else "uv"
    (root / LOCK_PATH).write_text(compile_lock(root, uv), encoding="utf-8")
    print(f"wrote {root / LOCK_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
