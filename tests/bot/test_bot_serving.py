"""`bot serve`'s process set-up (bot/serving.py): the garbage collector kept off the answer's path,
in a fresh interpreter (it changes the process's collector)."""

from __future__ import annotations

import json
import subprocess
import sys

from mlops_bot.bot.serving import GC_YOUNG_THRESHOLD

_PROBE = """
import gc, json
from mlops_bot.bot.serving import settle_heap
import mlops_bot.bot.app  # what serve has imported by then
before = gc.get_threshold()
settle_heap()
after, frozen = gc.get_threshold(), gc.get_freeze_count()
collected = []
gc.callbacks.append(lambda phase, info: phase == "stop" and collected.append(info["collected"]))
for _ in range(3 * after[0]):  # cyclic garbage only a collection frees
    node = {}
    node["self"] = node
print(json.dumps({"before": before, "after": after, "frozen": frozen, "collected": sum(collected)}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer_but_still_run() -> None:
    out = json.loads(subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                                    check=True, timeout=120).stdout)
    assert out["after"] == [GC_YOUNG_THRESHOLD, *out["before"][1:]]
    assert out["frozen"] > 10_000  # modules, classes and functions no collection scans again
    assert out["collected"] >= GC_YOUNG_THRESHOLD  # cycles made afterwards are still collected
