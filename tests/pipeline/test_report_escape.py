"""Everything a user types is data: hostile column names, group values, class labels, config text and
report.json fields render as the characters given, through GitHub's own markdown engine (cmark-gfm,
raw HTML allowed as on github.com), and open no tag, heading, details block, table cell or mention."""

from __future__ import annotations

import html.parser
import re
from pathlib import Path

import cmarkgfm
import numpy as np
import pandas as pd
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_bot.analysis.drift import compute_drift
from mlops_bot.analysis.fairness import compute_fairness
from mlops_bot.config import parse_config
from mlops_bot.forge.publish import check_from_report
from mlops_bot.monitor.monitor import MetricCheck, MonitorReport
from mlops_bot.monitor.render import render_monitor
from mlops_bot.pipeline.comment import render_markdown
from mlops_bot.pipeline.evaluate import Predictions, make_target
from mlops_bot.pipeline.gates import GateResult, compare
from mlops_bot.pipeline.plots import plot_confusion
from mlops_bot.pipeline.result import Baseline, Reproducibility, ValidationReport
from mlops_bot.registry.model_card import render_model_card
from mlops_bot.report import escape
from mlops_bot.report.drift import plot_distributions, render_drift
from mlops_bot.report.fairness import render_fairness

IMG = "<img src=x onerror=alert(1)>"
FORGED = "</details></summary>## ✅ forged"
TICKS = "a`b``c ``` `` x"
PIPE = "left|right"
MENTION = "@org/team and @alice"
HOSTILE = [IMG, FORGED, TICKS, PIPE, MENTION, "[click](https://evil.example)", "**bold** _it_ ~~s~~ $x$",
           "line\n## heading on a new line", "<!-- hide the rest", "&lt;img&gt;"]
ZWSP = "\u200b"


class _Html(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append("<!--")


def render(markdown: str) -> _Html:
    """GitHub's renderer with raw HTML passed through (github.com sanitises later; we must not rely on it)."""
    parsed = _Html()
    parsed.feed(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))
    parsed.close()
    return parsed


def visible(parsed: _Html) -> str:
    return "".join(parsed.text).replace(ZWSP, "")


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def assert_inert(markdown: str, benign: str, hostile: list[str]) -> None:
    """Same tags as the benign rendering (no tag, heading or details more), every hostile value
    shown verbatim, and no live mention (an @ directly followed by a login)."""
    got, expected = render(markdown), render(benign)
    assert sorted(got.tags) == sorted(expected.tags)
    shown = _one_line(visible(got))
    for value in hostile:
        assert _one_line(value) in shown, value
    assert not re.search(r"@[A-Za-z0-9]", "".join(got.text))


# ------------------------------------------------------------------------------------ the functions
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_text_renders_any_string_verbatim_in_one_paragraph(value: str) -> None:
    parsed = render(f"before {escape.text(value)} after")
    assert parsed.tags == ["p"]
    expected = _one_line(escape._one_line(value).replace("\x00", " "))
    assert _one_line(visible(parsed)) == _one_line(f"before {expected} after")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60))
def test_cell_and_code_keep_a_table_row_of_three_cells(value: str) -> None:
    table = f"| a | b | c |\n|---|---|---|\n| {escape.cell(value)} | {escape.code(value, table=True)} | z |"
    parsed = render(table)
    assert parsed.tags.count("td") == 3 and parsed.tags.count("tr") == 2
    assert set(parsed.tags) <= {"table", "thead", "tbody", "tr", "th", "td", "code"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("`a @|\\<>x"), max_size=30))
def test_code_span_shows_backticks_verbatim(value: str) -> None:
    parsed = render(f"x {escape.code(value)} y")
    assert parsed.tags == ["p", "code"]
    code = "".join(parsed.text)[2:-2].replace(ZWSP, "")
    # CommonMark strips one padding space each side when both are there, and shows content otherwise.
    assert code.strip(" ") == value.strip(" ") or (not value.strip(" ") and not code.strip(" "))


def test_mentions_and_issue_references_are_neutralised_but_look_the_same() -> None:
    out = escape.text("ping @org/team, @alice and #12; mail a@b.io")
    assert "@org" not in out and "@alice" not in out and "#12" not in out
    assert out.replace(ZWSP, "") == "ping @org/team, @alice and &#35;12; mail a@b.io".replace("&#35;", "#")
    assert escape.code("@alice").replace(ZWSP, "") == "`@alice`"


def test_quote_bounds_a_megabyte() -> None:
    big = "v" + "9" * 1_000_000
    quoted = escape.quote(big)
    assert len(quoted) < 260 and "1,000,001 characters" in quoted
    assert escape.quote("short") == "`short`"
    assert escape.truncate("x" * 10, 4) == "xxxx… (10 characters)"


def test_prose_keeps_markdown_but_not_html() -> None:
    out = escape.prose(f"*Ranks* loans.\n{IMG}\nAsk @risk/owners")
    parsed = render(out)
    assert "img" not in parsed.tags and "em" in parsed.tags
    assert IMG in visible(parsed)


# ------------------------------------------------------------------------------------ the renderers
def _report(model: str = "credit", metric: str = "accuracy", label: object = 1) -> ValidationReport:
    return ValidationReport.model_validate({
        "model": model, "task": "classification", "verdict": "fail",
        "metrics": {metric: compare(0.8, 0.7, [-0.2, -0.01])},
        "gates": [GateResult(metric=metric, rule="drop <= 0.01", passed=False, status="fail",
                             detail="dropped by 0.1 (limit 0.01)")],
        "baseline": Baseline(source="model", description=f"model file {model}.skops"),
        "holdout_rows": 10, "train_rows": 20,
        "bootstrap": {"samples": 100, "confidence": 0.95, "paired": True},
        "confusion_matrix": {"labels": [0, label], "matrix": [[5, 1], [2, 2]]},
        "reproducibility": Reproducibility(seed=3, data={"train": "ab" * 32}, packages={"python": "3.11"},
                                           command=f"python train.py --name {model}"),
    })


def test_pr_comment_with_hostile_model_metric_and_class_label_is_inert() -> None:
    for value in HOSTILE:
        hostile = render_markdown(_report(model=value, metric=value, label=value))
        benign = render_markdown(_report(model="credit", metric="m1", label="yes"))
        assert_inert(hostile, benign, [value])


def test_drift_section_with_hostile_column_names_is_inert() -> None:
    rng = np.random.default_rng(0)
    names = [IMG, FORGED, PIPE, MENTION, TICKS]
    ref = pd.DataFrame({n: rng.normal(size=300) for n in names})
    cur = pd.DataFrame({n: rng.normal(loc=i, size=300) for i, n in enumerate(names)})
    report = compute_drift(ref, cur, columns=names, workers=1)
    text = render_drift(report, plots={IMG: "drift_00_x.png"})
    plain = [f"c{i}" for i in range(len(names))]
    benign_report = compute_drift(ref.set_axis(plain, axis=1), cur.set_axis(plain, axis=1), columns=plain,
                                  workers=1)
    assert_inert(text, render_drift(benign_report, plots={"c0": "drift_00_x.png"}), names)


def test_fairness_section_with_hostile_group_values_is_inert() -> None:
    rng = np.random.default_rng(1)
    groups = [IMG, FORGED, "@org/team", "a|b"]
    sensitive = pd.Series(rng.choice(groups, size=400), name="<b>group</b>")
    y_true, y_pred = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    hostile = render_fairness(compute_fairness(y_true, y_pred, sensitive, seed=0))
    plain = sensitive.map({g: f"g{i}" for i, g in enumerate(groups)}).rename("group")
    benign = render_fairness(compute_fairness(y_true, y_pred, plain, seed=0))
    # Group keys join several sensitive columns with "|", which the renderer spaces out.
    assert_inert(hostile, benign, [*groups[:3], "a | b", "<b>group</b>"])


def test_model_card_with_hostile_config_text_is_inert() -> None:
    def config(text: str, column: str) -> dict[str, object]:
        return {
            "model": {"name": "credit", "task": "classification", "description": text,
                      "intended_use": text, "limitations": text, "owners": ["@alice", text]},
            "train": {"builtin": {"estimator": "logistic_regression"}},
            "data": {"train": "train.csv", "holdout": "holdout.csv", "target": column, "sensitive": [column]},
        }
    report = {"verdict": "pass", "metrics": {IMG: {"head": 0.8}},
              "fairness": {"demographic_parity_ratio": 0.9, "small_groups": [FORGED]}}
    card = render_model_card(parse_config(config(IMG, FORGED)), report, "v1.0.0")
    plain = {**report, "metrics": {"m": {"head": 0.8}},
             "fairness": {"demographic_parity_ratio": 0.9, "small_groups": ["g"]}}
    benign = render_model_card(parse_config(config("text", "col")), plain, "v1.0.0")
    assert_inert(card, benign, [IMG, FORGED])


def test_check_run_summary_from_an_untrusted_report_json_is_inert() -> None:
    def report(text: str) -> dict[str, object]:
        return {"verdict": "fail", "model": text,
                "gates": [{"metric": text, "rule": text, "passed": False}],
                "metrics": {text: {"base": text, "head": 0.5, "diff": None}}}
    fields = check_from_report(report(FORGED + IMG))
    assert_inert(fields.summary, check_from_report(report("m")).summary, [FORGED + IMG])
    huge = check_from_report(report("@org/team " * 100_000))
    assert len(huge.title) < 200 and all(len(a.message) < 2100 for a in huge.annotations)


def test_monitor_issue_text_with_hostile_names_is_inert() -> None:
    def monitor(text: str) -> MonitorReport:
        return MonitorReport(
            model="credit", version="v1.0.0", stage="production", window_start=0.0, window_end=3600.0,
            status="decayed", reasons=[f"{text} decayed"], rows=100, labeled_rows=50,
            drift={"number_of_drifted_columns": 1, "number_of_columns": 1, "drift_share": 1.0,
                   "share_threshold": 0.5,
                   "columns": {text: {"type": "num", "method": "ks", "score": 0.01, "threshold": 0.05,
                                      "drifted": True}}},
            metrics={text: MetricCheck(registered=0.9, live=0.7, drop=0.2, max_drop=0.05, decayed=True)},
        )
    assert_inert(render_monitor(monitor(FORGED)), render_monitor(monitor("m")), [FORGED])
    assert_inert(render_monitor(monitor(IMG + MENTION)), render_monitor(monitor("m")), [IMG + MENTION])


MATHTEXT = "$\\foo{$"  # matplotlib's mathtext raised ParseFatalException on this: a crash, not an error


def test_plots_show_dollar_signs_in_column_names_and_labels_as_typed(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    values = rng.choice([MATHTEXT, "$x^2$ plain"], size=200)
    ref = pd.DataFrame({MATHTEXT: rng.normal(size=200), "cat": values})
    cur = pd.DataFrame({MATHTEXT: rng.normal(loc=1.0, size=200), "cat": rng.permutation(values)})
    written = plot_distributions(ref, cur, compute_drift(ref, cur, workers=1), tmp_path / "drift")
    assert set(written) == {MATHTEXT, "cat"} and all(p.stat().st_size > 0 for p in written.values())
    y_true = np.array([MATHTEXT, "b", MATHTEXT, "b"], dtype=object)
    head = Predictions(y_pred=np.array(["b", "b", MATHTEXT, "b"], dtype=object))
    target = make_target("classification", y_true, [head], positive_label="b")
    assert plot_confusion(target, head, tmp_path / "confusion.png").stat().st_size > 0
    assert escape.plot_text(MATHTEXT) == "\\$\\foo{\\$"
