"""Random registries written straight into git (one `git fast-import` stream), with GTO's tag names
and messages: many models, stages, unassignments, deregistrations, deprecations, assignments of
unregistered commits, monorepo names, same-second ties, plus tags the registry must ignore."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

T0 = 1_700_000_000


def _tag(lines: list[str], name: str, mark: int, when: int, message: str, who: str = "bench") -> None:
    data = message.encode()
    lines.append(f"tag {name}\nfrom :{mark}\ntagger {who} <{who}@example.com> {when} +0000\n"
                 f"data {len(data)}\n{message}\n")


def build_random_registry(repo: Path, seed: int, models: int = 12, commits: int = 4) -> list[str]:
    """Build the registry; returns the model names (name form, `dir:name` for monorepo ones)."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    lines: list[str] = []
    for c in range(commits):
        # Commit dates interleave with tag dates, so GTO's commit events sort among tag events.
        when = T0 + rng.randint(0, 40)
        message = f"commit {c}"
        lines.append(f"commit refs/heads/main\nmark :{c + 1}\n"
                     f"author dev <dev@example.com> {when} +0100\n"
                     f"committer dev <dev@example.com> {when} +0100\n"
                     f"data {len(message)}\n{message}\n")
    names = []
    for m in range(models):
        name = f"team/{m}:model-{m}" if m % 5 == 4 else f"model-{m}"
        in_tag = name.replace(":", "=")
        names.append(name)
        clock = T0 + rng.randint(0, 20)
        counter = 0
        registered: dict[str, int] = {}  # version -> commit mark
        used: set[int] = set()  # GTO refuses two versions on one commit, even after deregistering
        stages: dict[str, set[str]] = {}  # version (or commit mark) -> stages
        major = 0
        for _ in range(rng.randint(1, 9)):
            clock += rng.choice([0, 0, 1, 2, 7])  # many same-second ties
            op = rng.random()
            free = [c for c in range(1, commits + 1) if c not in used]
            if op < 0.35 and free:
                major += 1
                version = f"v{major}.{rng.randint(0, 3)}.{rng.randint(0, 3)}" + rng.choice(["", "", "-rc.1"])
                mark = rng.choice(free)
                registered[version] = mark
                used.add(mark)
                trailers = rng.choice(["", "\n\nActor: alice\nPull-Request: 7"])
                _tag(lines, f"{in_tag}@{version}", mark, clock,
                     f"Registering artifact {name} version {version}{trailers}")
            elif op < 0.65 and registered:
                version = rng.choice(sorted(registered))
                stage = rng.choice(["dev", "staging", "prod"])
                counter += 1
                stages.setdefault(version, set()).add(stage)
                _tag(lines, f"{in_tag}#{stage}#{counter}", registered[version], clock,
                     f"Assigning stage {stage} to artifact {name} version {version}")
            elif op < 0.72 and free:
                mark = rng.choice(free)  # assignment of a commit that was never registered
                used.add(mark)
                counter += 1
                _tag(lines, f"{in_tag}#dev#{counter}", mark, clock,
                     f"Assigning stage dev to artifact {name} version {mark}")
            elif op < 0.82 and any(stages.values()):
                version = rng.choice(sorted(v for v, s in stages.items() if s))
                stage = rng.choice(sorted(stages[version]))
                stages[version].discard(stage)
                counter += 1
                _tag(lines, f"{in_tag}#{stage}!#{counter}", registered[version], clock,
                     f"Unassigning stage '{stage}' to artifact '{name}' version '{version}'")
            elif op < 0.9 and registered:
                version = rng.choice(sorted(registered))
                mark = registered.pop(version)
                stages.pop(version, None)
                _tag(lines, f"{in_tag}@{version}!", mark, clock,
                     f"Deregistering artifact {name} version {version}")
            elif registered and f"{in_tag}@deprecated" not in "".join(lines):
                _tag(lines, f"{in_tag}@deprecated", next(iter(registered.values())), clock,
                     f"Deprecating artifact '{name}'")
    # Tags the registry ignores: not registry names, and lightweight tags.
    _tag(lines, "release-1.0", 1, T0, "a release")
    _tag(lines, "v1.0.0", 1, T0, "a version tag without a model")
    stream = "".join(lines).encode()
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream, check=True)
    subprocess.run(["git", "-C", str(repo), "tag", "model-0@v99.0.0", "main"], check=True)
    subprocess.run(["git", "-C", str(repo), "reset", "-q", "--hard", "main"], check=True)
    return names
