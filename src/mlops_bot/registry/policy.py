"""The promotion policy (pure): may this actor put this version into this stage now?

Inputs are plain data (the configured RegistrySection, the stages the version already holds or
held, the actor's repository permission, whether the version's gates passed); the answer is either
nothing (allowed) or a PolicyError whose message says what to do instead.
"""

from __future__ import annotations

from collections.abc import Collection

from mlops_bot.config import RegistrySection
from mlops_bot.errors import PolicyError
from mlops_bot.permissions import Permission, permission_at_least


def check_promotion(
    policy: RegistrySection,
    *,
    name: str,
    version: str,
    stage: str,
    reached_stages: Collection[str],
    actor: str | None,
    actor_permission: Permission | None,
    gates_passed: bool | None,
) -> None:
    """Raise PolicyError unless promoting `name` `version` to `stage` is allowed.

    `reached_stages`: stages this version has ever been assigned (the path it already walked).
    `actor_permission=None` means a local operation by the repository's owner (CLI without a forge).
    `gates_passed=None` means no validation verdict is known for the version.
    """
    if stage not in policy.stages:
        raise PolicyError(
            f"stage {stage!r} is not one of the configured stages ({' -> '.join(policy.stages)}); "
            "add it to registry.stages in .github/mlops.yml"
        )
    rules = policy.stage_policy(stage)
    who = actor or "this user"
    if actor_permission is not None:
        if not permission_at_least(actor_permission, rules.permission):
            raise PolicyError(
                f"{who} has '{actor_permission}' permission; promoting to {stage} needs "
                f"'{rules.permission}' or higher"
            )
        if rules.approvers and actor not in rules.approvers:
            raise PolicyError(
                f"{who} may not promote to {stage}: only {', '.join(rules.approvers)} may approve it"
            )
    if rules.require_gates and gates_passed is not True:
        state = "failed" if gates_passed is False else "have no recorded verdict"
        raise PolicyError(
            f"{name} {version} cannot go to {stage}: its validation gates {state}; "
            "promote a version whose report.json verdict is 'pass'"
        )
    index = policy.stages.index(stage)
    if not policy.allow_skip and index > 0:
        previous = policy.stages[index - 1]
        if previous not in reached_stages:
            raise PolicyError(
                f"{name} {version} cannot go to {stage} before {previous}: stages are "
                f"{' -> '.join(policy.stages)} and registry.allow_skip is false; assign {previous} first"
            )
