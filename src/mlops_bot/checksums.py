"""SHA-256 of files and `SHA256SUMS` files: the one home of every hash of a file we take.

`SHA256SUMS` is `sha256sum`'s format: `<64 hex>  <name>` per line (a `*` instead of the second space
marks binary mode), names are plain file names inside the folder (no separators, no `..`). Used for
data fingerprints in reports, registry release assets, model folders the server loads, and image
layers of the docker target.

`verify_folder` is what every load of a model folder calls: each file listed must match, and when
the registry's tag recorded digests (`expected`), the folder's list must agree with them too (the
tag is the trust anchor; a folder's own list only proves the files did not change since it was
written).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlops_bot.errors import IntegrityError

SUMS_NAME = "SHA256SUMS"
_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def is_plain_name(name: str) -> bool:
    """A name that stays inside its folder when joined to it."""
    return not any(sep in name for sep in ("/", "\\", "\0")) and name not in ("", ".", "..")


def render_sums(digests: Mapping[str, str]) -> str:
    """`sha256sum` output: `<hex>  <name>` per line, sorted by name (pure)."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def parse_sums(text: str, source: str = SUMS_NAME) -> dict[str, str]:
    """name -> lower-case hex digest (pure). A malformed line or a name that is a path is an error."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, sep, name = line.partition(" *")  # binary-mode marker
        if not sep or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest.lower()):
            raise IntegrityError(f"{source} line {number} is not '<sha256>  <file>': {line[:120]!r}")
        if not is_plain_name(name):
            # The names become paths under the folder: no separators, no `..`.
            raise IntegrityError(f"{source} line {number} names {name[:120]!r}, not a plain file name")
        found[name] = digest.lower()
    return found


def mismatch(name: str, actual: str, expected: str, where: str) -> IntegrityError:
    return IntegrityError(
        f"{name} has sha256 {actual[:12]}…, expected {expected[:12]}… ({where}); the file was modified "
        "or corrupted after it was recorded, refusing it"
    )


def write_sums(folder: str | Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """Write `folder/SHA256SUMS` over `names` (default: every regular file but SHA256SUMS)."""
    folder = Path(folder)
    if names is None:
        names = [p.name for p in folder.iterdir() if p.is_file() and p.name != SUMS_NAME]
    digests = {name: sha256_file(folder / name) for name in names}
    (folder / SUMS_NAME).write_text(render_sums(digests), encoding="utf-8")
    return digests


def read_sums(folder: str | Path) -> dict[str, str] | None:
    """The folder's `SHA256SUMS`, parsed; None when it has none."""
    path = Path(folder) / SUMS_NAME
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise IntegrityError(f"{path} is not UTF-8 text") from None
    return parse_sums(text, str(path))


def verify_folder(folder: str | Path, expected: Mapping[str, str] | None = None,
                  require: Iterable[str] = ()) -> dict[str, str] | None:
    """Check every file the folder's SHA256SUMS lists (and, when `expected` is given, that the list
    agrees with it: same names, same digests). Returns the verified digests, or None when the folder
    has no SHA256SUMS and nothing is expected. Names in `require` must be listed."""
    folder = Path(folder)
    listed = read_sums(folder)
    if listed is None:
        if expected:
            raise IntegrityError(f"{folder} has no {SUMS_NAME}, but the registry recorded digests for "
                                 f"{', '.join(sorted(expected))}; refusing to trust its files")
        return None
    where = f"{folder / SUMS_NAME}"
    if expected:
        for name, digest in sorted(expected.items()):
            if listed.get(name) != digest:
                raise IntegrityError(f"{folder}: {SUMS_NAME} disagrees with the registry tag for {name}; "
                                     "the folder was modified after registration")
        extra = sorted(set(listed) - set(expected))
        if extra:
            raise IntegrityError(f"{folder}: {SUMS_NAME} lists {', '.join(extra)}, which the registry tag "
                                 "does not record; the folder was modified after registration")
        where = "the registry tag"
    for name in require:
        if name not in listed:
            raise IntegrityError(f"{folder}: {SUMS_NAME} does not list {name}; refusing to trust it")
    for name, digest in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"{folder} lacks {name}, listed in {SUMS_NAME}")
        actual = sha256_file(path)
        if actual != digest:
            raise mismatch(str(path), actual, digest, where)
    return listed
