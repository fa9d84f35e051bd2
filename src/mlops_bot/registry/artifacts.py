"""Model artifacts as release assets with checksums.

A version's files (model, report, model card, reference profile) are uploaded to the release named
by its register tag, with a `SHA256SUMS` file in `sha256sum` format. The register tag carries the
same digests in its trailers, so the tag (signed into git history) is the trust anchor: a download
is refused unless every file matches both before anything is returned, let alone loaded.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mlops_bot.checksums import SUMS_NAME, is_plain_name, mismatch, parse_sums, render_sums, sha256_file
from mlops_bot.errors import ForgeError, IntegrityError, RegistryError
from mlops_bot.forge.base import Forge

KNOWN_ASSETS = ("model.skops", "report.json", "model_card.md", "reference_profile.json", "data_schema.json")


def checksums(files: Mapping[str, Path]) -> dict[str, str]:
    for name, path in files.items():
        if not is_plain_name(name) or name == SUMS_NAME:
            raise RegistryError(f"invalid artifact name {name!r}")
        if not Path(path).is_file():
            raise RegistryError(f"artifact {name}: file {path} does not exist")
    return {name: sha256_file(Path(path)) for name, path in files.items()}


def upload_release(forge: Forge, tag: str, files: Mapping[str, Path], digests: Mapping[str, str],
                   body: str = "") -> None:
    """Create the release for `tag` and upload every file plus SHA256SUMS."""
    release = forge.get_release(tag)
    if release is None:
        release = forge.create_release(tag, name=tag, body=body)
    present = {a.name for a in release.assets}
    with tempfile.TemporaryDirectory() as tmp:
        sums = Path(tmp) / SUMS_NAME
        sums.write_text(render_sums(digests))
        for name, path in [*sorted(files.items()), (SUMS_NAME, sums)]:
            if name in present:
                raise RegistryError(f"release {tag} already has an asset {name}; refusing to replace it")
            forge.upload_release_asset(release.id, Path(path), name=name)


def download_release(forge: Forge, tag: str, dest: Path, expected: Mapping[str, str] | None = None) -> Path:
    """Download every asset of `tag` into `dest`, verifying each against SHA256SUMS and against
    the digests recorded in the tag (`expected`). Nothing lands in `dest` unless all match."""
    release = forge.get_release(tag)
    if release is None:
        raise RegistryError(f"no release for {tag}: it was registered without artifacts")
    names = {a.name for a in release.assets}
    if SUMS_NAME not in names:
        raise IntegrityError(f"release {tag} has no {SUMS_NAME}; refusing to trust its files")
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp)
        try:
            sums_path = forge.download_release_asset(tag, SUMS_NAME, staging / SUMS_NAME)
        except ForgeError as error:
            raise IntegrityError(f"cannot fetch {SUMS_NAME} of {tag}: {error}") from None
        listed = parse_sums(sums_path.read_text(encoding="utf-8"), f"{SUMS_NAME} of {tag}")
        if expected:
            for name, digest in expected.items():
                if listed.get(name) != digest:
                    raise IntegrityError(
                        f"{tag}: {SUMS_NAME} disagrees with the registry tag for {name}; "
                        "the release was modified after registration"
                    )
            extra = sorted(set(listed) - set(expected))
            if extra:
                raise IntegrityError(
                    f"{tag}: {SUMS_NAME} lists {', '.join(extra)}, which the registry tag does not "
                    "record; the release was modified after registration"
                )
        for name, digest in sorted(listed.items()):
            if name not in names:
                raise IntegrityError(f"release {tag} lacks {name}, listed in {SUMS_NAME}")
            path = forge.download_release_asset(tag, name, staging / name)
            actual = sha256_file(path)
            if actual != digest:
                raise mismatch(f"{tag}: {name}", actual, digest, SUMS_NAME)
        dest.mkdir(parents=True, exist_ok=True)
        for name in [*sorted(listed), SUMS_NAME]:
            shutil.move(str(staging / name), dest / name)
    return dest
