"""Drift behaviour that needs no anchor: scipy equivalence of the fast paths, corrections, profiles,
edge cases, the CLI and the markdown/PNG report section."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mlops_bot.analysis import drift_methods as dm
from mlops_bot.analysis.correction import adjust_p_values
from mlops_bot.analysis.drift import compute_drift
from mlops_bot.analysis.profile import ReferenceProfile, build_profile
from mlops_bot.cli import main
from mlops_bot.config import ColumnDriftOverride, DriftSection
from mlops_bot.errors import DataError
from mlops_bot.report.drift import plot_distributions, render_drift


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=40),
    st.lists(st.integers(-5, 5).map(lambda x: x * 0.5), min_size=1, max_size=40),
)
def test_fast_wasserstein_equals_scipy_even_with_ties(u: list[float], v: list[float]) -> None:
    a, b = np.sort(np.array(u)), np.sort(np.array(v))
    ours = dm.wasserstein_normed(a, b, 1.0)
    assert math.isclose(ours, stats.wasserstein_distance(u, v), rel_tol=1e-12, abs_tol=1e-15)


def test_sorted_histogram_equals_numpy() -> None:
    rng = np.random.default_rng(3)
    values = np.sort(rng.normal(size=5000))
    edges = np.histogram_bin_edges(values, bins="sturges")
    assert (dm._sorted_histogram(values, edges) == np.histogram(values, edges)[0]).all()


def test_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    assert adjust_p_values(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 1.0])
    # Benjamini-Hochberg step-up: sorted 0.01,0.03,0.04,0.5 -> 0.04,0.0533,0.0533,0.5
    assert adjust_p_values(p, "benjamini-hochberg") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])
    assert adjust_p_values(p, "none") == p


def _frames(n_ref: int = 400, n_cur: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame({f"x{i}": rng.normal(size=n_ref) for i in range(6)})
    cur = pd.DataFrame({f"x{i}": rng.normal(0.25 if i == 0 else 0.0, 1, n_cur) for i in range(6)})
    ref["cat"] = rng.choice(["a", "b", "c"], n_ref)
    cur["cat"] = rng.choice(["a", "b", "c"], n_cur)
    return ref, cur


def test_correction_only_touches_p_values_and_can_flip_decisions() -> None:
    ref, cur = _frames()
    plain = compute_drift(ref, cur)
    corrected = compute_drift(ref, cur, DriftSection(correction="bonferroni"))
    m = len(plain.columns)
    for name, col in corrected.columns.items():
        assert col.raw_score == plain.columns[name].score
        assert col.score == pytest.approx(min(1.0, plain.columns[name].score * m))
    assert corrected.n_drifted <= plain.n_drifted


def test_overrides_ignore_and_skipped_columns() -> None:
    ref, cur = _frames()
    ref["text"] = [f"free text {i}" for i in range(len(ref))]
    cur["text"] = [f"other text {i}" for i in range(len(cur))]
    ref["empty"] = np.nan
    cur["empty"] = np.nan
    settings = DriftSection(
        columns={
            "x1": ColumnDriftOverride(method="psi", threshold=0.3),
            "cat": ColumnDriftOverride(method="jensenshannon"),
        },
        ignore=["x5"],
    )
    report = compute_drift(ref, cur, settings)
    assert "x5" not in report.columns
    assert report.columns["x1"].method == "psi" and report.columns["x1"].threshold == 0.3
    assert report.columns["x1"].psi_flavour == "evidently"
    assert report.columns["cat"].method == "jensenshannon"
    assert "empty" in report.skipped
    text = report.columns["text"]  # text columns are scored by the domain classifier (text_drift.py)
    assert text.type == "text" and text.method == "perc_text_content_drift" and text.top_words is not None
    data = report.to_json_dict()
    assert set(data["columns"]["x0"]) >= {"type", "method", "score", "threshold", "drifted"}


def test_classic_psi_bands() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(size=5000)})
    same = compute_drift(
        ref,
        pd.DataFrame({"x": rng.normal(size=5000)}),
        DriftSection(psi_flavour="classic", columns={"x": ColumnDriftOverride(method="psi")}),
    )
    moved = compute_drift(
        ref,
        pd.DataFrame({"x": rng.normal(1.0, 1, 5000)}),
        DriftSection(psi_flavour="classic", columns={"x": ColumnDriftOverride(method="psi")}),
    )
    assert same.columns["x"].score < 0.1 and not same.columns["x"].drifted
    assert moved.columns["x"].score >= 0.25 and moved.columns["x"].drifted
    assert dm.psi_band(moved.columns["x"].score) == "significant shift"
    assert "classic flavour, significant shift" in render_drift(moved)


def test_profile_round_trip_exact_for_counts_and_small_columns(tmp_path: Path) -> None:
    ref, cur = _frames(n_ref=3000, n_cur=2000)
    ref["code"] = np.random.default_rng(2).integers(0, 5, len(ref))
    cur["code"] = np.random.default_rng(3).integers(0, 6, len(cur))  # a new category in current
    profile = build_profile(ref, sample_size=10_000)  # every value kept: everything exact
    path = profile.save(tmp_path / "reference_profile.json")
    loaded = ReferenceProfile.load(path)
    from_frame = compute_drift(ref, cur).to_json_dict()
    from_profile = compute_drift(loaded, cur).to_json_dict()
    for name, col in from_frame["columns"].items():
        other = from_profile["columns"][name]
        assert other["method"] == col["method"]
        assert other["score"] == pytest.approx(col["score"], rel=1e-9, abs=1e-300)
        assert "approximate" not in other


def test_profile_sample_is_bounded_and_flagged_approximate(tmp_path: Path) -> None:
    ref, cur = _frames(n_ref=20_000, n_cur=5000)
    profile = build_profile(ref, sample_size=2000, seed=7)
    assert len(profile.columns["x0"].sample or []) == 2000
    assert build_profile(ref, sample_size=2000, seed=7) == profile  # seeded
    assert profile.columns["cat"].counts_exact
    exact = compute_drift(ref, cur)
    approx = compute_drift(profile, cur)
    assert approx.columns["x0"].approximate and approx.columns["x0"].method == "wasserstein"
    assert approx.columns["x0"].score == pytest.approx(exact.columns["x0"].score, abs=0.05)
    assert not approx.columns["cat"].approximate
    assert approx.columns["cat"].score == pytest.approx(exact.columns["cat"].score, rel=1e-9)


def test_profile_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "reference_profile.json"
    path.write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(DataError, match="schema_version 99"):
        ReferenceProfile.load(path)


def test_cli_drift_json_markdown_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = _frames()
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet", index=False)
    assert (
        main(["drift", "--reference", str(tmp_path / "ref.csv"), "--current", str(tmp_path / "cur.parquet")])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["columns"]["x0"]["method"] == "ks"
    assert data["drift_share"] == data["number_of_drifted_columns"] / data["number_of_columns"]
    assert (
        main(
            [
                "drift",
                "--reference",
                str(tmp_path / "ref.csv"),
                "--current",
                str(tmp_path / "cur.parquet"),
                "--format",
                "markdown",
                "--progress",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.startswith("### Data drift")
    assert "drift: 7/7 columns" in captured.err
    assert (
        main(["drift", "--reference", str(tmp_path / "nope.csv"), "--current", str(tmp_path / "cur.parquet")])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


def test_cli_fairness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, 500),
            "p": rng.integers(0, 2, 500),
            "sex": rng.choice(["f", "m"], 500),
            "age": rng.choice(["young", "old"], 500),
        }
    )
    frame.to_csv(tmp_path / "pred.csv", index=False)
    args = [
        "fairness",
        "--predictions",
        str(tmp_path / "pred.csv"),
        "--y-true",
        "y",
        "--y-pred",
        "p",
        "--sensitive",
        "sex,age",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["by_group"]) == {"f|old", "f|young", "m|old", "m|young"}
    assert main([*args, "--format", "markdown"]) == 0
    assert "four-fifths heuristic" in capsys.readouterr().out
    assert main([*args[:-1], "sex,zip"]) == 2
    assert "zip" in capsys.readouterr().err


def test_report_ranks_drifted_first_and_plots(tmp_path: Path) -> None:
    ref, cur = _frames()
    report = compute_drift(ref, cur)
    text = render_drift(report)
    rows = [line for line in text.splitlines() if line.startswith("| x") or line.startswith("| cat")]
    drifted = [r for r in rows if "yes" in r]
    assert rows[: len(drifted)] == drifted
    assert "K-S p-value" in text
    written = plot_distributions(ref, cur, report, tmp_path / "plots", limit=2)
    assert len(written) == 2
    for path in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    named = render_drift(report, plots={n: f"plots/{p.name}" for n, p in written.items()})
    assert all(f"`plots/{p.name}`" in named for p in written.values())
    assert "](plots/" not in named  # a PR comment cannot resolve links relative to the report folder


def test_column_batched_parquet_path_equals_in_memory(tmp_path: Path) -> None:
    from mlops_bot.analysis.drift_files import compute_drift_files

    ref, cur = _frames(n_ref=3000, n_cur=2500)
    ref.to_parquet(tmp_path / "ref.parquet", index=False)
    cur.to_parquet(tmp_path / "cur.parquet", index=False)
    settings = DriftSection(correction="benjamini-hochberg")
    seen: list[int] = []
    batched = compute_drift_files(
        tmp_path / "ref.parquet",
        tmp_path / "cur.parquet",
        settings,
        batch_columns=3,
        progress=lambda done, total, name: seen.append(done),
    )
    assert batched.to_json_dict() == compute_drift(ref, cur, settings).to_json_dict()
    assert seen == list(range(1, 8))
    profile = build_profile(ref)
    from_profile = compute_drift_files(profile, tmp_path / "cur.parquet", settings, batch_columns=2)
    assert from_profile.to_json_dict() == compute_drift(profile, cur, settings).to_json_dict()
    with pytest.raises(DataError, match="does not exist"):
        compute_drift_files(tmp_path / "missing.parquet", tmp_path / "cur.parquet")


def test_numerical_method_on_categorical_column_is_a_clear_error() -> None:
    ref, cur = _frames()
    settings = DriftSection(columns={"cat": ColumnDriftOverride(method="wasserstein")})
    with pytest.raises(DataError, match=r"'cat'.*'wasserstein' needs numerical values"):
        compute_drift(ref, cur, settings, workers=1)
