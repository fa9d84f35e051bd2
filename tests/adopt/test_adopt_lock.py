"""The setup action's lock (`actions/setup/constraints.txt`) matches pyproject.toml: its recorded digest
is that of the current dependency declarations, and for every supported Python each declared
requirement has exactly one pin that satisfies it (the lock the setup action installs with
`--constraint` and keys its cache on)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from mlops_bot.adopt import lock

ROOT = Path(__file__).resolve().parents[2]


def _pins(text: str) -> list[tuple[str, Version, Marker | None]]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", line
        out.append((canonicalize_name(requirement.name), Version(spec.version), requirement.marker))
    return out


def test_the_lock_was_written_from_the_current_declarations() -> None:
    text = (ROOT / lock.LOCK_PATH).read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert text.startswith(lock.DIGEST_PREFIX)
    recorded = text.splitlines()[0].removeprefix(lock.DIGEST_PREFIX)
    assert recorded == lock.declared_digest(pyproject), (
        "pyproject.toml's dependencies changed since actions/setup/constraints.txt was written: "
        "run `make lock` (python -m mlops_bot.adopt.lock)")


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13"])
def test_every_declared_requirement_has_one_satisfying_pin(python: str) -> None:
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
    pins: dict[str, Version] = {}
    for name, version, marker in _pins((ROOT / lock.LOCK_PATH).read_text()):
        if marker is None or marker.evaluate(env):
            assert name not in pins, f"two pins of {name} apply on Python {python}"
            pins[name] = version
    for line in lock.declared((ROOT / "pyproject.toml").read_text()):
        kind, text = line.split(": ", 1)
        if kind == "python":
            continue
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        if name == "mlops-bot" or (requirement.marker and not requirement.marker.evaluate(env)):
            continue
        assert name in pins, f"{text} ({kind}) has no pin in the lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {text}"


def test_the_digest_follows_the_declarations() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    changed = pyproject.replace('"httpx>=0.27"', '"httpx>=0.28"')
    assert changed != pyproject
    assert lock.declared_digest(changed) != lock.declared_digest(pyproject)
    tests_only = pyproject.replace('"pytest>=8"', '"pytest>=9"')  # dev is not in the lock
    assert lock.declared_digest(tests_only) == lock.declared_digest(pyproject)
