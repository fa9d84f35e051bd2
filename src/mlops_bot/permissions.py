"""Repository permission levels, in GitHub's order, and the one comparison everyone uses.

`none < read < triage < write < maintain < admin` (the collaborator-permission API's `role_name`).
The registry's promotion policy, the bot's command checks and the forges all import from here.
"""

from __future__ import annotations

from typing import Literal

Permission = Literal["none", "read", "triage", "write", "maintain", "admin"]
PERMISSION_ORDER: tuple[Permission, ...] = ("none", "read", "triage", "write", "maintain", "admin")

# The bot reads a repository (clone, fetch, config) only for a commenter with at least this
# permission: on a public repository every account has `read`, so below this nobody can make the bot
# do repository work. The config cannot let a command (other than /help) run below it.
REPOSITORY_FLOOR: Permission = "triage"


def permission_at_least(have: Permission, need: Permission) -> bool:
    return PERMISSION_ORDER.index(have) >= PERMISSION_ORDER.index(need)
