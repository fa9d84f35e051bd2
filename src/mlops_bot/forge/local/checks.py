"""The local forge's check runs and commit statuses."""

from __future__ import annotations

from mlops_bot.errors import ForgeError
from mlops_bot.forge.base import Annotation, CheckConclusion, CheckRun, CheckStatus, CommitState
from mlops_bot.forge.local.store import LocalStore, utc_now


class LocalChecks(LocalStore):
    """Check runs (a completed one needs a conclusion) and commit statuses."""

    def create_check_run(
        self,
        head_sha: str,
        name: str,
        *,
        status: CheckStatus = "completed",
        conclusion: CheckConclusion | None = None,
        title: str = "",
        summary: str = "",
        text: str = "",
        annotations: list[Annotation] | None = None,
    ) -> CheckRun:
        if status == "completed" and conclusion is None:
            raise ForgeError("local forge: a completed check run needs a conclusion")
        with self._state() as state:
            cid = self._next_id(state)
            row = {
                "id": cid, "name": name, "head_sha": head_sha, "status": status, "conclusion": conclusion,
                "title": title, "summary": summary, "text": text, "html_url": self._url("checks", cid),
                "annotations": [a.model_dump() for a in annotations or []],
            }
            state["check_runs"][str(cid)] = row
        return CheckRun.model_validate(row)

    def update_check_run(
        self,
        check_run_id: int,
        *,
        status: CheckStatus | None = None,
        conclusion: CheckConclusion | None = None,
        title: str | None = None,
        summary: str | None = None,
        text: str | None = None,
        annotations: list[Annotation] | None = None,
    ) -> CheckRun:
        with self._state() as state:
            row = state["check_runs"].get(str(check_run_id))
            if row is None:
                raise ForgeError(f"local forge: check run {check_run_id} not found")
            for key, value in (("status", status), ("conclusion", conclusion), ("title", title),
                               ("summary", summary), ("text", text)):
                if value is not None:
                    row[key] = value
            if conclusion is not None:
                row["status"] = "completed"
            if annotations:
                row["annotations"].extend(a.model_dump() for a in annotations)
        return CheckRun.model_validate(row)

    def list_check_runs(self, head_sha: str) -> list[CheckRun]:
        with self._state(write=False) as state:
            rows = [r for r in state["check_runs"].values() if r["head_sha"] == head_sha]
        return [CheckRun.model_validate(r) for r in rows]

    def create_commit_status(
        self, sha: str, state: CommitState, context: str, description: str = "", target_url: str = ""
    ) -> None:
        with self._state() as data:
            data["statuses"].append({
                "sha": sha, "state": state, "context": context, "description": description[:140],
                "target_url": target_url, "created_at": utc_now(),
            })
