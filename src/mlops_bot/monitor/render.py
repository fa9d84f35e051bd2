"""How a monitor report reads: markdown for issues and job summaries, a PNG of the signals over time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mlops_bot.analysis.data_checks import DataChecksReport
from mlops_bot.monitor.monitor import MonitorReport
from mlops_bot.report import escape
from mlops_bot.report.data_checks import render_data_checks

_STATUS = {"ok": "✅ ok", "decayed": "❌ decayed", "insufficient_data": "⚠️ not enough data"}


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def render_monitor(report: MonitorReport, plot: str | None = None) -> str:
    """Markdown: verdict and reasons first, then drift per column, metrics, and the timeline."""
    lines = [
        f"## Production monitor: {escape.text(report.model)} {escape.text(report.version or '')} "
        f"({escape.text(report.stage)})",
        "",
        f"**Status:** {_STATUS[report.status]}  ",
        f"**Window:** {_when(report.window_start)} → {_when(report.window_end)}; "
        f"{report.rows} prediction(s), {report.labeled_rows} labeled",
        "",
    ]
    if report.reasons:
        lines += ["**Why:**", *[f"- {escape.text(reason)}" for reason in report.reasons], ""]
    if report.drift:
        lines += [
            f"### Input drift: {report.drift['number_of_drifted_columns']} of "
            f"{report.drift['number_of_columns']} columns (share {report.drift['drift_share']:.2f}, "
            f"threshold {report.drift['share_threshold']:.2f})",
            "",
            "| Column | Type | Method | Score | Threshold | Drifted |",
            "|---|---|---|---:|---:|:---:|",
        ]
        for name, col in report.drift["columns"].items():
            lines.append(
                f"| {escape.cell(name)} | {escape.cell(col['type'])} | {escape.cell(col['method'])} | "
                f"{_num(col['score'])} | "
                f"{col['threshold']:g} | {'yes' if col['drifted'] else 'no'} |"
            )
        lines.append("")
    if report.data_checks:
        checked = DataChecksReport.model_validate(report.data_checks)
        lines += [render_data_checks(checked, title="Input data validation"), ""]
    if report.prediction_drift:
        p = report.prediction_drift
        lines += [
            f"### Prediction drift: {escape.text(p.method)} {_num(p.score)} (threshold {p.threshold:g}) "
            f"{'— drifted' if p.drifted else ''}",
            "",
        ]
    if report.metrics:
        lines += ["### Live metrics (labeled predictions) vs registered", "",
                  "| Metric | Registered | Live | Worse by | Allowed | Decayed |",
                  "|---|---:|---:|---:|---:|:---:|"]
        for name, m in report.metrics.items():
            drop = "-" if m.drop is None else f"{m.drop:.1%}"
            allowed = "-" if m.max_drop is None else f"{m.max_drop:.1%}"
            lines.append(f"| {escape.cell(name)} | {_num(m.registered)} | {_num(m.live)} | {drop} | "
                         f"{allowed} | {'yes' if m.decayed else 'no'} |")
        lines.append("")
    if report.timeline:
        metric = _timeline_metric(report)
        lines += ["### Over time", "",
                  "| Window start | Rows | Drift share | Prediction drift | "
                  f"{escape.cell(metric or 'Metric')} |",
                  "|---|---:|---:|---:|---:|"]
        for point in report.timeline:
            value = point.metrics.get(metric) if metric else None
            lines.append(f"| {_when(point.start)} | {point.rows} | {_num(point.drift_share, 3)} | "
                         f"{_num(point.prediction_drift, 3)} | {_num(value)} |")
        lines.append("")
    if plot:
        lines += [f"![signals over time](<{escape.link_target(plot)}>)", ""]
    return "\n".join(lines)


def _timeline_metric(report: MonitorReport) -> str | None:
    """The metric worth plotting: the first gated one, else the first with live values."""
    gated = [n for n, m in report.metrics.items() if m.max_drop is not None]
    seen = [n for p in report.timeline for n, v in p.metrics.items() if v is not None]
    for name in [*gated, *seen]:
        if name in seen:
            return name
    return None


def plot_timeline(report: MonitorReport, path: str | Path) -> Path:
    """Drift share, prediction drift and the live metric per window, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    xs = [datetime.fromtimestamp(p.start, UTC) for p in report.timeline]
    metric = _timeline_metric(report)
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    try:
        ax = axes[0]
        ax.plot(xs, [p.drift_share for p in report.timeline], marker="o", label="input drift share")
        ax.plot(xs, [p.prediction_drift for p in report.timeline], marker="s", label="prediction drift")
        ax.axhline(report.drift["share_threshold"] if report.drift else 0.5, color="red", ls="--", lw=1,
                   label="drift share threshold")
        ax.set_ylabel("drift")
        ax.legend(loc="upper left", fontsize=8)
        ax.set_title(escape.plot_text(f"{report.model} {report.version or ''} ({report.stage})"))
        ax = axes[1]
        if metric:
            ax.plot(xs, [p.metrics.get(metric) for p in report.timeline], marker="o", color="green",
                    label=escape.plot_text(f"live {metric}"))
            registered = report.metrics.get(metric)
            if registered and registered.registered is not None:
                ax.axhline(registered.registered, color="gray", ls="--", lw=1,
                           label=escape.plot_text(f"registered {metric}"))
            ax.legend(loc="lower left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no labels yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(escape.plot_text(metric or "metric"))
        ax.set_xlabel("window start (UTC)")
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(path, dpi=90)
    finally:
        plt.close(fig)
    return path
