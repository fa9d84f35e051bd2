"""The `report` section: how the PR comment shows the report's images."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlops_bot.config.fields import Strict


class ReportSection(Strict):
    """How the PR comment shows the report's images (docs/report-images.md)."""

    images: Literal["branch", "artifact", "none"] = Field(
        default="branch",
        description="branch: commit them to `assets_branch` and embed them by commit URL; artifact: name "
        "the files (they travel with the workflow artifact); none: leave them out of the comment",
    )
    assets_branch: str = Field(default="mlops-bot/assets", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    keep_commits_per_pr: int = Field(default=3, ge=1, le=100)
