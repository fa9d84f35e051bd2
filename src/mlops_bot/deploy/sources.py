"""Where the controller gets model versions: the registry (checksum-verified release assets), or a
plain directory of `VERSION/model.skops` (or `model.onnx`) folders for local runs and tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Protocol

from mlops_bot.checksums import verify_folder
from mlops_bot.errors import RegistryError
from mlops_bot.model_file import MODEL_FILE_NAMES as MODEL_FILES
from mlops_bot.model_file import version_model_file


class ModelSource(Protocol):
    def resolve(self, name: str, spec: str) -> str:
        """`vX.Y.Z` or a stage name -> a version."""

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        """Materialise a version under `dest`; returns the model directory."""

    def model_file(self, name: str, version: str) -> str:
        """The name of the version's model file (model.skops or model.onnx), without fetching it."""


class RegistrySource:
    """Versions from the git-tag registry; `Registry.download` verifies SHA256SUMS."""

    def __init__(self, registry: object) -> None:
        self.registry = registry

    def resolve(self, name: str, spec: str) -> str:
        return str(self.registry.resolve_spec(name, spec))  # type: ignore[attr-defined]

    def model_file(self, name: str, version: str) -> str:
        """From the asset digests its register tag records."""
        assets = self.registry.checksums_of(name, version)  # type: ignore[attr-defined]
        return version_model_file(assets, f"{name} {version} in the registry (the register tag's assets)")

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        target = dest / name.replace("/", "_") / version
        cached = [file for file in MODEL_FILES if (target / file).is_file()]
        if cached:
            # A cached download is re-verified against the digests the register tag recorded, every
            # time: the cache is a folder anyone with disk access could have edited since.
            expected = self.registry.checksums_of(name, version)  # type: ignore[attr-defined]
            verify_folder(target, expected or None, require=cached)
            return target
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        return Path(self.registry.download(name, version, target))  # type: ignore[attr-defined]


class DirectorySource:
    """`ROOT/VERSION/model.skops` (plus optional signature.json); stages are not known here."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def resolve(self, name: str, spec: str) -> str:
        if (self.root / spec).is_dir():
            return spec
        raise RegistryError(f"no model version {spec!r} under {self.root}")

    def model_file(self, name: str, version: str) -> str:
        folder = self.root / version
        return version_model_file([p.name for p in folder.iterdir() if p.is_file()], str(folder))

    def fetch(self, name: str, version: str, dest: Path) -> Path:
        path = self.root / version
        if not any((path / file).is_file() for file in MODEL_FILES):
            raise RegistryError(f"{path} holds no {' or '.join(MODEL_FILES)}")
        return path
