"""Pieces of the demo's rollout chapter that must hold whatever the machine's speed: the bad
canary is a real skops-loadable model whose predictions trip the prediction-drift gate, the demo
gates keep the configured success-rate and drift gates, and the progress line shows gate figures."""

from __future__ import annotations

import io
from pathlib import Path

from mlops_bot.config import RolloutGates, RolloutSection
from mlops_bot.demo import CHAPTERS, dataset
from mlops_bot.demo.rollout import Progress, demo_gates, gate_figures, recall_hotfix
from mlops_bot.deploy.controller import RolloutState, Transition
from mlops_bot.deploy.gates import evaluate_gates, prediction_drift
from mlops_bot.deploy.metrics import VersionStats
from mlops_bot.deploy.plan import plan_from_config
from mlops_bot.deploy.routing import VersionRef
from mlops_bot.model_file import load_model, save_model


def test_rollout_chapter_sits_between_registry_and_monitor() -> None:
    assert CHAPTERS.index("registry") < CHAPTERS.index("rollout") < CHAPTERS.index("monitor")
    if "promote" in CHAPTERS:
        assert CHAPTERS.index("promote") < CHAPTERS.index("rollout")


def test_recall_hotfix_loads_through_skops_and_drifts(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    dataset.generate(600, seed=5).to_csv(train, index=False)
    model = recall_hotfix(train, dataset.TARGET)
    save_model(model, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")
    features = list(dataset.FEATURES_NUMERIC + dataset.FEATURES_CATEGORICAL)
    traffic = dataset.generate(300, seed=6, shift=0.8)[features]
    bad = loaded.predict(traffic)
    assert list(loaded.feature_names_in_) == features
    assert bad.mean() > 0.8  # "default" for nearly everyone
    truth = dataset.generate(300, seed=6, shift=0.8)[dataset.TARGET]
    bad_counts = {str(k): int((bad == k).sum()) for k in (0, 1)}
    good_counts = {str(k): int((truth == k).sum()) for k in (0, 1)}
    drift = prediction_drift(bad_counts, good_counts)
    assert drift is not None and drift > demo_gates(RolloutGates()).max_prediction_drift  # type: ignore[operator]


def test_demo_gates_keep_success_rate_and_loosen_small_sample_gates() -> None:
    configured = RolloutGates()
    relaxed = demo_gates(configured)
    assert relaxed.min_requests == 10 and relaxed.min_success_rate == configured.min_success_rate
    assert relaxed.max_prediction_drift == 0.4
    # A healthy canary (20 % positives, like stable) passes at 10 requests unless 7+ are positive...
    healthy = [prediction_drift({"0": 10 - x, "1": x}, {"0": 800, "1": 200}) for x in range(11)]
    assert [x for x, d in enumerate(healthy) if d is not None and d > 0.4] == [7, 8, 9, 10]
    # ...while the hotfix (nearly all positive) fails with 8 or more of 10.
    assert all(d is not None and d > 0.4 for d in healthy[8:])
    assert relaxed.max_p99_latency_ms is not None and configured.max_p99_latency_ms is not None
    assert relaxed.max_p99_latency_ms >= configured.max_p99_latency_ms
    off = demo_gates(RolloutGates(max_p99_latency_ms=None, max_p99_latency_ratio=None, min_requests=5))
    assert (off.max_p99_latency_ms, off.max_p99_latency_ratio, off.min_requests) == (None, None, 5)


def test_progress_line_names_the_failed_gate() -> None:
    stable = VersionStats(requests=40, predictions={"0": 32, "1": 8})
    canary = VersionStats(requests=12, predictions={"1": 12})
    decision = evaluate_gates(canary, stable, RolloutGates(min_requests=10, max_p99_latency_ms=None,
                                                           max_p99_latency_ratio=None))
    assert decision.outcome == "fail"
    text = gate_figures(decision)
    assert text.startswith("fail: 12/10 requests, success 100%, drift ") and text.endswith("FAILED")

    class Load:
        def __init__(self) -> None:
            self.versions = {"v1.0.0": 40, "v2.0.0": 12}
            self.failures = 0

    out = io.StringIO()
    plan = plan_from_config(RolloutSection())
    progress = Progress(out, plan, Load())  # type: ignore[arg-type]
    state = RolloutState(model="m", phase="progressing", stable=VersionRef(version="v1.0.0", path="."),
                         canary=VersionRef(version="v2.0.0", path="."), weight=10, decision=decision,
                         history=[Transition(at=0, phase="progressing", version="v2.0.0",
                                             message="canary v2.0.0")])
    progress.update(state)
    progress.update(state)  # unchanged: not printed again off a terminal
    lines = out.getvalue().splitlines()
    assert lines == ["  -> canary v2.0.0", "  step 1/2 canary  10% | answered: v1.0.0 40 / v2.0.0 12 | "
                                           f"failed 0 | gates: {text}"]
