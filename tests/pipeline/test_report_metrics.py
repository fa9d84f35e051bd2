"""The one reader of metric values in report.json / metrics.json (pipeline/report_metrics.py), and
its two users: the PR validation's base metrics and the monitor's registered metrics read a bad
value the same way, with the same one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_bot.errors import DataError
from mlops_bot.monitor.monitor import registered_metrics_from_report
from mlops_bot.pipeline.baseline import read_base_metrics
from mlops_bot.pipeline.gates import MetricComparison
from mlops_bot.pipeline.report_metrics import metrics_from_report, read_metrics_file


def test_both_shapes_give_the_head_values_and_null_means_not_computed() -> None:
    report = {"metrics": {"accuracy": {"base": 0.8, "head": 0.9, "diff": 0.1}, "f1": {"head": None},
                          "mae": {"base": 1.0}, "auc": 0.7, "n": 3}}
    assert metrics_from_report(report, "r") == {"accuracy": 0.9, "auc": 0.7, "n": 3.0}
    assert metrics_from_report({"accuracy": 0.9, "f1": None}, "m") == {"accuracy": 0.9}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), "0.9", True, [0.9]])
def test_a_bad_value_is_one_clear_error_naming_the_file_and_the_metric(bad: object) -> None:
    with pytest.raises(DataError, match=r"^src: metric 'accuracy' is .*; expected a finite number"):
        metrics_from_report({"metrics": {"accuracy": {"head": bad}}}, "src")
    with pytest.raises(DataError, match="metric 'accuracy'"):
        metrics_from_report({"accuracy": bad}, "src")


def test_the_validation_and_the_monitor_read_alike(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    # Python's json reads the NaN token (as some writers emit it): still refused
    path.write_text('{"metrics": {"accuracy": {"head": 0.9}, "auc": {"head": NaN}}}')
    with pytest.raises(DataError, match=r"base metrics file .*report.json: metric 'auc' is nan"):
        read_base_metrics(path)
    with pytest.raises(DataError, match=r"registered version's report.json: metric 'auc' is nan"):
        registered_metrics_from_report({"metrics": {"auc": {"head": float("nan")}}})
    path.write_text('{"metrics": {"accuracy": {"head": 0.9}, "auc": {"head": null}}}')
    assert read_base_metrics(path) == {"accuracy": 0.9}
    registered = {"metrics": {"accuracy": {"head": 0.9}, "auc": {"head": None}}}
    assert registered_metrics_from_report(registered) == {"accuracy": 0.9}
    for text, message in (("{", "is not valid JSON"), ("[1, 2]", "expected an object")):
        path.write_text(text)
        with pytest.raises(DataError, match=message):
            read_metrics_file(path)
    with pytest.raises(DataError, match="does not exist"):
        read_metrics_file(tmp_path / "missing.json")


def test_the_writer_stores_a_non_finite_value_as_not_computed() -> None:
    from mlops_bot.pipeline.result import ValidationReport

    report = ValidationReport.model_construct(metrics={
        "accuracy": MetricComparison(head=0.9), "auc": MetricComparison(head=float("nan")),
    })
    assert report.head_metrics() == {"accuracy": 0.9}
    assert metrics_from_report(report.head_metrics(), "metrics.json") == {"accuracy": 0.9}
