"""How the analysis files we store with a version (the data schema, the reference profile) are
written and read: strict JSON (no NaN token), a `schema_version` checked before anything else, and
one clear `DataError` naming the file for every way reading can fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ValidationError

from mlops_bot.errors import DataError


class StoredDocument(BaseModel):
    """A pydantic model saved as one JSON file. Subclasses set `document_name` (for messages),
    `document_version` (the `schema_version` this code reads) and, optionally, `rebuild_hint`."""

    document_name: ClassVar[str]
    document_version: ClassVar[int]
    rebuild_hint: ClassVar[str] = ""

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), allow_nan=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        what = f"{cls.document_name} {path}"
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{what} does not exist") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{what} cannot be read: {exc}") from None
        version = data.get("schema_version") if isinstance(data, dict) else None
        if version != cls.document_version:
            hint = f" ({cls.rebuild_hint})" if cls.rebuild_hint else ""
            raise DataError(
                f"{what} has schema_version {version!r}; this mlops-bot reads "
                f"version {cls.document_version}{hint}"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DataError(f"{what} is malformed: {exc.errors()[0]['msg']}") from None
