"""The drift section of the PR report: a table (drifted columns first, method named) and PNG
distribution plots of the most drifted columns. Rendering is pure; plotting writes files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops_bot.analysis.drift import ColumnDrift, DriftReport
from mlops_bot.analysis.drift_methods import STRICT_METHODS, psi_band
from mlops_bot.report import escape
from mlops_bot.report.numbers import fmt

METHOD_NAMES = {
    "ks": "K-S p-value",
    "chisquare": "chi-square p-value",
    "z": "Z-test p-value",
    "wasserstein": "Wasserstein (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "psi": "PSI",
    "abs_text_content_drift": "domain classifier ROC AUC",
    "perc_text_content_drift": "domain classifier ROC AUC (vs random)",
    "embedding_distance": "Euclidean distance of mean vectors",
}


def _num(value: float) -> str:
    return fmt(value)


def _method(col: ColumnDrift) -> str:
    name = METHOD_NAMES[col.method]
    if col.method == "psi":
        name += f" ({col.psi_flavour} flavour"
        name += f", {psi_band(col.score)})" if col.psi_flavour == "classic" else ")"
    if col.raw_score is not None:
        name += " (corrected)"
    if col.approximate:
        name += " (approx., from profile sample)"
    return name


def _rule(col: ColumnDrift) -> str:
    if col.method == "perc_text_content_drift":
        return f"> {_num(col.threshold)} (percentile of random classifiers)"
    if col.method in STRICT_METHODS:
        return f"> {_num(col.threshold)}"
    if col.method == "ks":
        return f"p <= {_num(col.threshold)}"
    if col.is_p_value:
        return f"p < {_num(col.threshold)}"
    return f">= {_num(col.threshold)}"


def render_drift(report: DriftReport, title: str = "Data drift", plots: dict[str, str] | None = None) -> str:
    """Markdown: verdict line, the per-column table, skipped columns, and the plot files when given."""
    verdict = "**Dataset drift detected**" if report.dataset_drift else "No dataset drift"
    lines = [
        f"### {title}",
        "",
        f"{verdict}: {report.n_drifted} of {len(report.columns)} columns drifted "
        f"(share {report.drift_share:.3f}; dataset drift when >= {report.share_threshold:g}).",
    ]
    if report.correction != "none":
        lines.append(f"p-values corrected for multiple testing ({report.correction}).")
    lines += ["", "| Column | Type | Method | Score | Drift when | Drifted |", "|---|---|---|---:|---|:---:|"]
    for col in report.ranked():
        mark = "🔴 yes" if col.drifted else "no"
        lines.append(
            f"| {escape.cell(col.name)} | {col.type} | {_method(col)} | {_num(col.score)} | {_rule(col)} "
            f"| {mark} |"
        )
    for col in report.ranked():
        if col.top_words:
            words = col.top_words
            current = ", ".join(escape.code(w) for w in words.get("current", [])) or "-"
            reference = ", ".join(escape.code(w) for w in words.get("reference", [])) or "-"
            lines += [
                "",
                f"Words that separate {escape.code(col.name)}: typical of the current data {current}; "
                f"of the reference {reference}.",
            ]
    if report.skipped:
        reasons = "; ".join(f"{escape.code(n)} ({escape.text(why)})" for n, why in report.skipped.items())
        lines += ["", "Not checked: " + reasons]
    if plots:
        # Named, not linked: a PR comment cannot resolve paths relative to the report folder; the
        # PNGs travel with the report (the workflow's artifact, the job summary).
        lines += ["", "Distribution plots beside the report: "
                  + ", ".join(f"{escape.code(p)} ({escape.text(n)})" for n, p in plots.items())]
    return "\n".join(lines) + "\n"


def plot_distributions(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    report: DriftReport,
    folder: str | Path,
    limit: int = 3,
    max_points: int = 200_000,
) -> dict[str, Path]:
    """One PNG per most-drifted column (drifted first): overlaid histograms for numerical columns,
    side-by-side category shares for categorical ones. Returns column -> file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plotted = [c for c in report.ranked() if c.type in ("numerical", "categorical")]
    for index, col in enumerate(plotted[:limit]):
        ref, cur = reference[col.name], current[col.name]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        if col.type == "numerical":
            r = ref.to_numpy(dtype=float, na_value=np.nan)
            c = cur.to_numpy(dtype=float, na_value=np.nan)
            r, c = r[np.isfinite(r)][:max_points], c[np.isfinite(c)][:max_points]
            edges = np.histogram_bin_edges(np.concatenate((r, c)), bins=30).tolist()
            ax.hist(r, bins=edges, density=True, alpha=0.5, label="reference")
            ax.hist(c, bins=edges, density=True, alpha=0.5, label="current")
        else:
            shares = pd.DataFrame(
                {
                    "reference": ref.dropna().astype(str).value_counts(normalize=True),
                    "current": cur.dropna().astype(str).value_counts(normalize=True),
                }
            ).fillna(0.0)
            shares = shares.sort_values("reference", ascending=False).head(20)
            x = np.arange(len(shares))
            ax.bar(x - 0.2, shares["reference"], width=0.4, label="reference")
            ax.bar(x + 0.2, shares["current"], width=0.4, label="current")
            ticks = [escape.plot_text(s[:12]) for s in shares.index]  # values are data: no mathtext
            ax.set_xticks(x, ticks, rotation=45, ha="right", fontsize=7)
        title = f"{escape.plot_text(col.name)}: {METHOD_NAMES[col.method]} = {_num(col.score)}"
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in col.name)
        path = folder / f"drift_{index:02d}_{safe}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written[col.name] = path
    return written
