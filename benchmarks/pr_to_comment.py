"""PR-to-comment timing under act (run on demand, not a test): job start to comment posted.

One pull request of the example repository (adopted with `mlops-bot init`) goes through the two
workflows users run, `mlops-pr.yml` (validate) then `mlops-pr-comment.yml` (comment, check run,
registration), under act against the GitHub API emulator, with the real install path: a fresh Python
and the setup action installing mlops-bot from its own source tree (uv, the core install), as on a
hosted runner. Cold: an empty uv cache (every wheel downloaded); warm: the cache of the previous run
(what actions/cache restores). Training is a 600-row logistic regression, timed on its own and
subtracted. The anchor, measured side by side when it installs here, is CML's setup: `npm install
@dvcorg/cml` (what `setup-cml` does), cold and warm npm cache.

    .venv/bin/python benchmarks/pr_to_comment.py [--runs 2] [--no-cml]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from github_emulator import Emulator  # noqa: E402
from workflows import act_harness as act  # noqa: E402

REPO = "octo/credit"
PR = 7
STEP = re.compile(r"Success - Main (?P<name>.+?) \[(?P<value>[\d.]+)(?P<unit>ms|s|µs|m)\]")


def _seconds(value: str, unit: str) -> float:
    return float(value) * {"ms": 1e-3, "µs": 1e-6, "s": 1.0, "m": 60.0}[unit]


def _steps(output: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for match in STEP.finditer(output):
        name = match.group("name")
        found[name] = found.get(name, 0.0) + _seconds(match["value"], match["unit"])
    return found


def training_seconds(repo: Path) -> float:
    """The training the validate step does, on its own: the built-in pipeline on the same data."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(repo / "data" / "train.csv")
    numeric = ["age", "income", "debt_ratio", "credit_history_years", "late_payments", "loan_amount"]
    model = Pipeline([("features", ColumnTransformer([("n", StandardScaler(), numeric),
                                                      ("c", OneHotEncoder(handle_unknown="ignore"),
                                                       ["employment", "purpose"])])),
                      ("model", LogisticRegression(max_iter=1000))])
    start = time.perf_counter()
    model.fit(frame, frame["default"])
    return time.perf_counter() - start


def pr_to_comment(base: Path, uv_cache: Path) -> dict[str, float]:
    example = act.build_example_repo(base)
    env = {"MLOPS_BOT_SKIP_INSTALL": "false", "MLOPS_TEST_FRESH_PYTHON": "true",
           "UV_CACHE_DIR": str(uv_cache)}
    with Emulator() as gh:
        gh.add_repo(REPO)
        gh.add_pull(REPO, PR, head_ref="feature", head_sha=example.head)
        pull = {"action": "synchronize", "number": PR,
                "pull_request": {"number": PR, "head": {"sha": example.head, "ref": "feature"},
                                 "base": {"ref": "main"}},  # no base sha: every model is validated
                "repository": {"full_name": REPO, "default_branch": "main"}}
        done = {"action": "completed",
                "workflow_run": {"id": 1, "name": "mlops-bot PR validation", "event": "pull_request",
                                 "conclusion": "success", "head_sha": example.head, "head_branch": "feature",
                                 "head_repository": {"full_name": REPO}, "pull_requests": []},
                "repository": {"full_name": REPO, "default_branch": "main"}}
        start = time.perf_counter()
        first = act.run_act(example, "pull_request", pull, "mlops-pr.yml", work=base / "work",
                            api_url=gh.url, repository=REPO, env=env, timeout=900)
        first.assert_ok()
        second = act.run_act(example, "workflow_run", done, "mlops-pr-comment.yml", work=base / "work",
                             api_url=gh.url, repository=REPO, env=env, timeout=900)
        second.assert_ok()
        total = time.perf_counter() - start
        assert [c for c in gh.state["comments"] if c.get("_repo", REPO) == REPO], "no comment posted"
    install = sum(seconds for run in (first, second) for name, seconds in _steps(run.output).items()
                  if name.startswith("mlops-bot/mlops-bot/actions/setup"))
    for job, run in (("validate job", first), ("comment job", second)):
        slow = sorted(((seconds, name) for name, seconds in _steps(run.output).items() if seconds >= 1.0),
                      reverse=True)
        print(f"  {job}: " + ", ".join(f"{name} {seconds:.1f} s" for seconds, name in slow), flush=True)
    return {"total": total, "install": install, "training": training_seconds(example.path)}


def cml_setup(npm_cache: Path) -> float | None:
    """`npm install @dvcorg/cml` into a fresh prefix with the given npm cache; None if it fails here."""
    if shutil.which("npm") is None:
        return None
    with tempfile.TemporaryDirectory() as prefix:
        start = time.perf_counter()
        command = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", prefix,
                   "--cache", str(npm_cache), "@dvcorg/cml"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0 or not (Path(prefix) / "node_modules" / ".bin" / "cml").exists():
            print(f"CML did not install here: {done.stderr.strip()[-300:]}")
            return None
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="warm runs after the cold one")
    parser.add_argument("--no-cml", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pr-to-comment-") as tmp:
        uv_cache, npm_cache = Path(tmp) / "uv-cache", Path(tmp) / "npm-cache"
        rows = []
        for index in range(1 + args.runs):
            label = "cold" if index == 0 else f"warm {index}"
            load_before = os.getloadavg()[0]
            result = pr_to_comment(Path(tmp) / f"run-{index}", uv_cache)
            rows.append((label, result))
            print(f"ours {label}: PR to comment {result['total']:.1f} s, of which install "
                  f"{result['install']:.1f} s, training {result['training']:.2f} s -> "
                  f"{result['total'] - result['training']:.1f} s without training "
                  f"(1-min load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
                  f"{os.cpu_count()} cores)", flush=True)
        if not args.no_cml:
            for label in ("cold", "warm"):
                seconds = cml_setup(npm_cache)
                if seconds is None:
                    break
                print(f"CML setup (npm install @dvcorg/cml) {label}: {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
