"""Model artifacts as release assets with checksums.

A version's files (model, report, model card, reference profile) are uploaded to the release named
by its register tag, with a `SHA256SUMS` file in `sha256sum` format. The register tag carries the
same digests in its trailers, so the tag (signed into git history) is the trust anchor: a download
is refused unless every file matches both before anything is returned, let alone loaded.

Registration is atomic from the user's view: the files go to a draft release first (invisible to
downloads), the tag is pushed once all of them are there, then the draft is bound to the tag and
published. A run stopped at any step leaves either no tag (and a draft the next run adopts or rolls
back) or a pushed tag with a complete draft (the next run publishes it).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlops_bot.checksums import (
    SUMS_NAME,
    is_plain_name,
    mismatch,
    parse_sums,
    render_sums,
    sha256_bytes,
    sha256_file,
)
from mlops_bot.errors import ForgeError, IntegrityError, RegistryError
from mlops_bot.forge.base import Forge, Release

KNOWN_ASSETS = ("model.skops", "model.onnx", "signature.json", "report.json", "model_card.md",
                "reference_profile.json", "data_schema.json")


def with_signature(files: Mapping[str, Path], scratch: Path,
                   extra_types: Iterable[str] = ()) -> dict[str, Path]:
    """The assets to register, with the model's `signature.json`. A given one (what `validate`
    wrote) must be a signature; it is checked against the model whenever the version is served, so
    registering needs neither the model's framework nor loading a pull request's model in the job
    that holds the write token. A missing one is read off the model into `scratch`: the model is
    loaded through the allow-list (a bad model file or an untrusted type is refused here, before
    anything is tagged). Assets without a model file are returned as they are."""
    from mlops_bot.model_file import MODEL_FILE_NAMES, load_model
    from mlops_bot.model_signature import SIGNATURE_FILE, parse_signature, signature_of

    models = [name for name in MODEL_FILE_NAMES if name in files]
    if len(models) > 1:
        raise RegistryError(f"a version has one model file; got {' and '.join(models)}")
    out = dict(files)
    given = files.get(SIGNATURE_FILE)
    if given is not None:
        source = f"artifact {SIGNATURE_FILE} ({given})"
        try:
            raw = json.loads(Path(given).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise RegistryError(f"{source} is not readable JSON: {exc}") from None
        parse_signature(raw, source)
        return out
    if not models:
        return out
    model = load_model(files[models[0]], extra_types=extra_types)
    written = Path(scratch) / SIGNATURE_FILE
    written.write_text(signature_of(model).to_json(), encoding="utf-8")
    out[SIGNATURE_FILE] = written
    return out


def checksums(files: Mapping[str, Path]) -> dict[str, str]:
    for name, path in files.items():
        if not is_plain_name(name) or name == SUMS_NAME:
            raise RegistryError(f"invalid artifact name {name!r}")
        if not Path(path).is_file():
            raise RegistryError(f"artifact {name}: file {path} does not exist")
    return {name: sha256_file(Path(path)) for name, path in files.items()}


def registration_marker(name: str, commit: str, digests: Mapping[str, str]) -> str:
    """The line in a draft's body that says which registration it belongs to (pure): the model, the
    commit, and a digest of the SHA256SUMS it will carry."""
    key = sha256_bytes(render_sums(digests).encode())[:32]
    return f"<!-- mlops-bot registration {name} {commit} {key} -->"


def _draft_tag(marker: str) -> str:
    # A draft needs a tag name but creates no tag; this one is never a registry tag.
    return "mlops-bot-draft-" + sha256_bytes(marker.encode())[:16]


def _owned_by(release: Release, name: str, commit: str) -> bool:
    return f"<!-- mlops-bot registration {name} {commit} " in release.body


def stage_draft(forge: Forge, name: str, commit: str, files: Mapping[str, Path],
                digests: Mapping[str, str], body: str = "") -> Release:
    """Every file plus SHA256SUMS (last) in a draft release that nobody can download yet.

    A draft of the same registration (same model, commit and files) left by a stopped run is
    adopted: what it already holds is kept, the rest uploaded. Drafts of an earlier attempt for the
    same model and commit with other files, or whose stored files differ in size from ours, are
    deleted (rolled back) first. Drafts of other registrations are left alone.
    """
    marker = registration_marker(name, commit, digests)
    sizes = {n: Path(p).stat().st_size for n, p in files.items()}
    with tempfile.TemporaryDirectory() as tmp:
        sums = Path(tmp) / SUMS_NAME
        sums.write_text(render_sums(digests), encoding="utf-8")
        sizes[SUMS_NAME] = sums.stat().st_size
        draft = None
        for candidate in forge.list_draft_releases():
            if not _owned_by(candidate, name, commit):
                continue
            intact = all(sizes.get(a.name) == a.size for a in candidate.assets)
            if draft is None and marker in candidate.body and intact:
                draft = candidate
            else:
                forge.delete_release(candidate.id)
        if draft is None:
            draft = forge.create_release(_draft_tag(marker), name=f"{name} (registering)",
                                         body=f"{body}\n\n{marker}".strip(), draft=True)
        _upload_missing(forge, draft, files, sums)
    return draft


def _upload_missing(forge: Forge, release: Release, files: Mapping[str, Path], sums: Path) -> None:
    present = {a.name for a in release.assets}
    for asset_name, path in [*sorted(files.items()), (SUMS_NAME, sums)]:
        if asset_name not in present:
            forge.upload_release_asset(release.id, Path(path), name=asset_name)


def complete_release(forge: Forge, release: Release, files: Mapping[str, Path],
                     digests: Mapping[str, str]) -> None:
    """A release published before all its files were uploaded (registrations before drafts existed):
    upload what is missing, SHA256SUMS last. Files already there are checked on every download."""
    with tempfile.TemporaryDirectory() as tmp:
        sums = Path(tmp) / SUMS_NAME
        sums.write_text(render_sums(digests), encoding="utf-8")
        _upload_missing(forge, release, files, sums)


def find_draft(forge: Forge, name: str, commit: str, digests: Mapping[str, str]) -> Release | None:
    marker = registration_marker(name, commit, digests)
    return next((d for d in forge.list_draft_releases() if marker in d.body), None)


def publish_draft(forge: Forge, draft: Release, tag: str, body: str = "") -> Release:
    """Bind the complete draft to its (pushed) register tag and publish it."""
    return forge.update_release(draft.id, tag=tag, name=tag, body=body, draft=False)


def release_is_complete(release: Release | None, files: Iterable[str]) -> bool:
    return release is not None and {*files, SUMS_NAME} <= {a.name for a in release.assets}


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
