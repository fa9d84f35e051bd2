"""Benchmark: the bounded YAML loader (`mlops_bot.config_yaml`) vs PyYAML's `safe_load`, side by side.

1. An ordinary config (examples/credit-risk/.github/mlops.yml): load time of ours vs `yaml.safe_load`
   (the anchor); the bounds must cost little.
2. An alias bomb of N levels of 9 aliases: what the old error-position index did (compose, then walk
   the expanded tree) vs our refusal, time and peak traced memory. The old walk grows as 9**N; ours
   stops at the first alias past the budget. Default N=6 (531,441 leaves) keeps the anchor runnable;
   the file from the issue (N=9) took the old code 58 s and ended in MemoryError.

Run: .venv/bin/python benchmarks/config_yaml_load.py [--levels 6] [--repeat 20]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mlops_bot import config_yaml
from mlops_bot.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "credit-risk" / ".github" / "mlops.yml"


def bomb(levels: int) -> str:
    return "lol0: &a0 lol\n" + "".join(
        f"lol{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, levels + 1)
    )


def old_line_index(text: str) -> int:
    """config.py before the bounded loader: every key path of the expanded tree, for error lines."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                path = (*prefix, str(key.value))
                lines[path] = key.start_mark.line + 1
                walk(value, path)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                path = (*prefix, str(i))
                lines[path] = item.start_mark.line + 1
                walk(item, path)

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return len(lines)


def ours_refuses(text: str) -> str:
    try:
        config_yaml.loads(text, "bomb.yml")
    except ConfigError as error:
        return str(error)
    raise SystemExit("the bomb was not refused")


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best seconds, peak traced MiB of one run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return best, peak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    text = EXAMPLE.read_text(encoding="utf-8")
    ours, ours_mem = measure(lambda: config_yaml.loads(text, str(EXAMPLE)), args.repeat)
    anchor, anchor_mem = measure(lambda: yaml.safe_load(text), args.repeat)
    print(f"ordinary config ({len(text):,} bytes): ours {ours * 1e3:.2f} ms, yaml.safe_load "
          f"{anchor * 1e3:.2f} ms, ratio {ours / anchor:.2f}; peak {ours_mem:.2f} vs {anchor_mem:.2f} MiB")

    laughs = bomb(args.levels)
    refusal, refusal_mem = measure(lambda: ours_refuses(laughs), args.repeat)
    old, old_mem = measure(lambda: old_line_index(laughs), 1)
    print(f"alias bomb, {args.levels} levels ({9 ** args.levels:,} leaves expanded): old index "
          f"{old:.2f} s / {old_mem:.0f} MiB, ours refuses in {refusal * 1e3:.2f} ms / {refusal_mem:.2f} MiB "
          f"(ratio {old / refusal:,.0f}x)")
    print(f"  -> {ours_refuses(laughs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
