"""Gates from the base branch: what decides a pull request's verdict comes from the config of the
branch it merges into, not from the pull request itself.

A PR may change how its model is trained and on which data, but a PR that lowers its own gates
(`roc_auc: {min: 0}`), points its baseline elsewhere, narrows the bootstrap or edits the registry's
stages and policy is judged by the base branch's sections instead, and the report says so. A
maintainer accepts the PR's own sections explicitly (the `/accept-gates` command, which adds the
label `ACCEPT_LABEL`; the next validation run honours it). Pure: both configs are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_bot.config import MlopsConfig

# The config sections that decide a verdict (gate thresholds, what they compare with and how).
DECIDING_SECTIONS: tuple[str, ...] = (
    "gates", "data_gates", "baseline", "bootstrap", "fairness", "drift", "registry",
)
ACCEPT_LABEL = "mlops-bot:accept-gates"
ACCEPT_COMMAND = "/accept-gates"


@dataclass(frozen=True)
class Judging:
    """The config to validate with, the sections the PR changes, and the line the report shows."""

    config: MlopsConfig
    changed: tuple[str, ...]
    notice: str | None


def _section(config: MlopsConfig, name: str) -> object:
    # data_gates is written under gates.data in the file: name it the way users see it.
    return getattr(config, name).model_dump(mode="json") if name != "gates" else {
        metric: rule.model_dump(mode="json") for metric, rule in config.gates.items()
    }


def changed_sections(pr: MlopsConfig, base: MlopsConfig) -> tuple[str, ...]:
    return tuple(name for name in DECIDING_SECTIONS if _section(pr, name) != _section(base, name))


def _shown(name: str) -> str:
    return "gates.data" if name == "data_gates" else name


def judge_by_base(pr: MlopsConfig, base: MlopsConfig | None, base_name: str,
                  accepted: bool = False) -> Judging:
    """The PR's config with the base branch's deciding sections (unless a maintainer `accepted` the
    PR's own). No base config (the PR that adopts mlops-bot): the PR's own sections, said so."""
    if base is None:
        return Judging(pr, (), f"{base_name} has no mlops-bot config yet: this PR's own gates apply")
    changed = changed_sections(pr, base)
    if not changed:
        return Judging(pr, (), None)
    listed = ", ".join(_shown(name) for name in changed)
    if accepted:
        return Judging(pr, changed, f"this PR changes its own gates ({listed}): judged by them, "
                                    f"accepted by a maintainer (label {ACCEPT_LABEL})")
    judged = pr.model_copy(update={name: getattr(base, name) for name in DECIDING_SECTIONS})
    return Judging(judged, changed,
                   f"this PR changes its own gates ({listed}): judged by {base_name}'s. A maintainer "
                   f"can accept them with a `{ACCEPT_COMMAND}` comment, then re-run the validation")
