"""Gates from the base branch: what decides a pull request's verdict comes from the config of the
branch it merges into, not from the pull request itself.

A PR may change how its model is trained and on which data, but a PR that lowers its own gates
(`roc_auc: {min: 0}`), points its baseline elsewhere, narrows the bootstrap or edits the registry's
stages and policy is judged by the base branch's sections instead, and the report says so. A
maintainer accepts the PR's own sections explicitly with the `/accept-gates` command: the bot checks
the commenter's permission (maintain or admin) and records the acceptance in its reply, bound to the
PR's head commit (`acceptance_record`); the job that posts the verdict honours only such a record in
a comment the bot wrote (`accepted_at`), never a label, which anyone with triage could add. Pure:
configs and comment bodies are passed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from mlops_bot.config import MlopsConfig
from mlops_bot.report.escape import comment_text

# The config sections that decide a verdict (gate thresholds, what they compare with and how).
DECIDING_SECTIONS: tuple[str, ...] = (
    "gates", "data_gates", "baseline", "bootstrap", "fairness", "drift", "registry",
)
ACCEPT_COMMAND = "/accept-gates"
ACCEPT_PERMISSION = "maintain"  # the least a commenter needs, whatever bot.commands says
ACCEPT_MARKER = "<!-- mlops-bot:accept-gates"
# A whole line of the bot's reply: escaped or quoted user text never starts a line with `<!--`.
_RECORD = re.compile(r"^<!-- mlops-bot:accept-gates head=([0-9a-f]{40}) by=[^\n]*-->$", re.MULTILINE)


def acceptance_record(head_sha: str, login: str) -> str:
    """The hidden line the bot's `/accept-gates` reply carries: which commit's gates were accepted."""
    return f"{ACCEPT_MARKER} head={head_sha} by={comment_text(login)} -->"


def accepted_at(own_comment_bodies: Iterable[str], head_sha: str) -> bool:
    """Whether one of the bot's own comments records an acceptance of exactly this head commit (a
    new push needs a new `/accept-gates`: it may change the gates again)."""
    return any(head_sha in _RECORD.findall(body) for body in own_comment_bodies)


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
                  accepted: bool = False, new_model: bool = False) -> Judging:
    """The PR's config with the base branch's deciding sections (unless a maintainer `accepted` the
    PR's own). No base config (the PR that adopts mlops-bot), or a base config without this model
    (`new_model`: the PR adds it): the PR's own sections, said so."""
    if base is None and new_model:
        return Judging(pr, (), f"{base_name}'s config has no model {pr.model.name!r} yet (this PR adds it): "
                               "its own gates apply")
    if base is None:
        return Judging(pr, (), f"{base_name} has no mlops-bot config yet: this PR's own gates apply")
    changed = changed_sections(pr, base)
    if not changed:
        return Judging(pr, (), None)
    listed = ", ".join(_shown(name) for name in changed)
    if accepted:
        return Judging(pr, changed, f"this PR changes its own gates ({listed}): judged by them, "
                                    f"accepted by a maintainer (`{ACCEPT_COMMAND}`)")
    judged = pr.model_copy(update={name: getattr(base, name) for name in DECIDING_SECTIONS})
    return Judging(judged, changed,
                   f"this PR changes its own gates ({listed}): judged by {base_name}'s. A maintainer "
                   f"can accept them with a `{ACCEPT_COMMAND}` comment, then re-run the validation workflow")
