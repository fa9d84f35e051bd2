"""The docker target's base image, assembled from this host: no image registry is reachable.

The rootfs holds only what the model server needs: this interpreter and its standard library
(relocated to /opt/python), the shared libraries `ldd` says they load, and the installed files (each
distribution's RECORD) of the server's runtime requirements, with their own dependencies. It is
written as a tarball and `docker import`ed as `mlops-bot-base:<hash>`, where the hash covers every
entry's path, mode and content: the same host environment gives the same tag, so the image is built
once and reused, and a changed package or interpreter gets a new one. About 350 MB instead of the
~2 GB a copy of the whole Python tree and virtualenv would be.

Planning (what goes where, the hash) is separate from I/O that is slow or needs the engine (hashing
file contents, writing the tar, importing it), so the layout is testable without Docker.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import io
import os
import platform
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mlops_bot.checksums import sha256_file
from mlops_bot.errors import MlopsError

BASE_REPOSITORY = "mlops-bot-base"
PREFIX = PurePosixPath("/opt/python")
PYTHON = PREFIX / "bin" / "python3"
SERVER_UID = 10001
# Bump when the layout changes, so an old cached image is not mistaken for a new one.
LAYOUT = "1"

# What `mlops-bot serve` imports (deploy/server.py and its modules, cli/deploy.py -> config.py,
# model_file.py) plus the ASGI server; their own requirements are added from the installed metadata.
SERVER_REQUIREMENTS = ("fastapi", "httptools", "numpy", "orjson", "pandas", "pydantic", "PyYAML",
                       "scikit-learn", "scipy", "skops", "uvicorn")

# Standard-library parts the server never loads: tests, GUIs, installers, build configuration.
_STDLIB_SKIP = re.compile(
    r"^(site-packages|dist-packages|test|idlelib|tkinter|turtledemo|ensurepip|lib2to3|config-[^/]*)(/|$)"
    r"|^lib-dynload/(_test|_ctypes_test|_tkinter|xxlimited)"
)


class BaseImageError(MlopsError):
    """The local base image could not be assembled or imported."""


@dataclass(frozen=True)
class Entry:
    """One rootfs member: a host file copied in, a symlink, or generated text."""

    path: str  # absolute, inside the image
    source: str | None = None
    link: str | None = None
    text: str | None = None
    mode: int = 0o644


# ------------------------------------------------------------------------------------ planning (pure)
def requirement_closure(roots: Iterable[str], requires: Callable[[str], list[str] | None],
                        environment: Mapping[str, str]) -> list[str]:
    """The distributions `roots` need at run time (markers evaluated for `environment`, extras
    ignored), as canonical names in a stable order."""
    seen: set[str] = set()
    todo = [canonicalize_name(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in requires(name) or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and not marker.evaluate({**environment, "extra": ""}):
                continue
            todo.append(canonicalize_name(requirement.name))
    return sorted(seen)


def system_files(uid: int = SERVER_UID) -> list[Entry]:
    """/etc/passwd and /etc/group with the unprivileged server user, and a sticky /tmp."""
    return [
        Entry("/etc/passwd", text=f"root:x:0:0:root:/root:/sbin/nologin\n"
                                  f"mlops:x:{uid}:{uid}:mlops-bot server:/tmp:/sbin/nologin\n"),
        Entry("/etc/group", text=f"root:x:0:\nmlops:x:{uid}:\n"),
        Entry("/tmp", mode=0o1777),  # noqa: S108 - the image's own /tmp
    ]


def parse_ldd(output: str) -> dict[str, str]:
    """`ldd` output -> {soname or loader path: resolved host path}; unresolved libraries (a module
    the server never imports may miss one) and the vDSO are left out."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        line = line.strip()
        match = re.match(r"^(\S+) => (/\S+) \(0x[0-9a-f]+\)$", line)
        if match:
            found[match.group(1)] = match.group(2)
            continue
        match = re.match(r"^(/\S+) \(0x[0-9a-f]+\)$", line)
        if match:  # the dynamic loader, named by its absolute path
            found[match.group(1)] = match.group(1)
    return found


def library_entries(needed: Mapping[str, str], copied: set[str], multiarch: str) -> list[Entry]:
    """Place the shared libraries that are not already part of the copied trees where the dynamic
    loader looks without an ld.so.cache: the loader at its absolute path, others in /usr/lib/<arch>."""
    entries = []
    for name, host in sorted(needed.items()):
        if os.path.realpath(host) in copied:
            continue
        target = name if name.startswith("/") else f"/usr/lib/{multiarch}/{name}"
        entries.append(Entry(target, source=host, mode=0o755))
    return entries


def digest(entries: Iterable[Entry], content_hash: Callable[[str], str]) -> str:
    """The image tag: a hash over every member's path, mode and content (not timestamps)."""
    total = hashlib.sha256(f"layout {LAYOUT}\n".encode())
    for entry in sorted(entries, key=lambda e: e.path):
        if entry.source is not None:
            what = "file " + content_hash(entry.source)
        elif entry.link is not None:
            what = "link " + entry.link
        elif entry.text is not None:
            what = "text " + hashlib.sha256(entry.text.encode()).hexdigest()
        else:
            what = "dir"
        total.update(f"{entry.path}\0{entry.mode:o}\0{what}\n".encode())
    return total.hexdigest()


# ------------------------------------------------------------------------- gathering (reads the host)
def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def stdlib_entries() -> list[Entry]:
    """The interpreter, its standard library (minus tests, GUIs, installers) and lib-dynload."""
    version = _python_version()
    executable = os.path.realpath(sys.executable)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    inside = PREFIX / "lib" / f"python{version}"
    entries = [Entry(str(PREFIX / "bin" / f"python{version}"), source=executable, mode=0o755),
               Entry(str(PYTHON), link=f"python{version}")]
    for root, dirs, files in os.walk(stdlib):
        rel_root = Path(root).relative_to(stdlib)
        dirs[:] = sorted(d for d in dirs if not _STDLIB_SKIP.match((rel_root / d).as_posix()))
        for name in sorted(files):
            rel = (rel_root / name).as_posix()
            if _STDLIB_SKIP.match(rel):
                continue
            source = os.path.join(root, name)
            if os.path.islink(source) and not os.path.exists(source):
                continue
            entries.append(Entry(str(inside / rel), source=source, mode=_mode(source)))
    return entries


def package_entries(requirements: Iterable[str] = SERVER_REQUIREMENTS) -> tuple[list[Entry], list[str]]:
    """The installed files of the requirements' closure, placed in the image's site-packages."""
    site = PREFIX / "lib" / f"python{_python_version()}" / "site-packages"
    environment = {key: str(value) for key, value in default_environment().items()}
    names = requirement_closure(requirements, _requires, environment)
    entries: list[Entry] = []
    pinned = []
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise BaseImageError(f"the model server needs {name!r}, which is not installed in "
                                 f"{sys.prefix}; pip install it and retry") from None
        pinned.append(f"{name}=={dist.version}")
        for file in dist.files or []:
            rel = PurePosixPath(file.as_posix())
            if rel.parts and rel.parts[0] == "..":
                continue  # console scripts and data outside site-packages
            source = str(dist.locate_file(file))
            if os.path.isfile(source):
                entries.append(Entry(str(site / rel), source=source, mode=_mode(source)))
    return entries, pinned


def _requires(name: str) -> list[str] | None:
    try:
        return metadata.requires(name)
    except metadata.PackageNotFoundError:
        return None


def _mode(path: str) -> int:
    return 0o755 if os.access(path, os.X_OK) else 0o644


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed_libraries(paths: Iterable[str], batch: int = 64) -> dict[str, str]:
    """What `ldd` resolves for these ELF files (and libgcc_s, which glibc loads on thread exit)."""
    elves = [p for p in paths if _is_elf(p)]
    needed: dict[str, str] = {}
    for start in range(0, len(elves), batch):
        result = subprocess.run(["ldd", *elves[start:start + batch]], capture_output=True, text=True,
                                check=False)
        needed.update(parse_ldd(result.stdout))
    for name in ("libgcc_s.so.1",):
        for directory in (f"/lib/{_multiarch()}", f"/usr/lib/{_multiarch()}"):
            candidate = os.path.join(directory, name)
            if name not in needed and os.path.exists(candidate):
                needed[name] = candidate
    return needed


def _multiarch() -> str:
    return str(sysconfig.get_config_var("MULTIARCH") or f"{platform.machine()}-linux-gnu")


def plan_rootfs(requirements: Iterable[str] = SERVER_REQUIREMENTS) -> tuple[list[Entry], list[str]]:
    """Every member of the base rootfs, and the pinned distributions in it."""
    entries = stdlib_entries()
    packages, pinned = package_entries(requirements)
    entries += packages
    copied = {os.path.realpath(e.source) for e in entries if e.source}
    libraries = needed_libraries(e.source for e in entries if e.source and (
        e.mode & 0o111 or ".so" in os.path.basename(e.source)))
    entries += library_entries(libraries, copied, _multiarch())
    entries += system_files()
    return entries, pinned


# --------------------------------------------------------------------------------------- building
def write_rootfs(entries: Iterable[Entry], destination: Path) -> Path:
    """A tarball with sorted members owned by root; parent directories are added as 0755. File
    timestamps are kept so the standard library's bytecode caches stay valid."""
    members = sorted(entries, key=lambda e: e.path)
    directories: set[str] = set()
    for entry in members:
        parent = PurePosixPath(entry.path).parent
        while str(parent) != "/":
            directories.add(str(parent))
            parent = parent.parent
    explicit = {e.path for e in members if e.source is None and e.link is None and e.text is None}
    with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as tar:
        for directory in sorted(directories - explicit):
            tar.addfile(_info(directory, tarfile.DIRTYPE, 0o755))
        for entry in members:
            if entry.source is not None:
                info = _info(entry.path, tarfile.REGTYPE, entry.mode)
                stat = os.stat(entry.source)
                info.size, info.mtime = stat.st_size, int(stat.st_mtime)
                with open(entry.source, "rb") as handle:
                    tar.addfile(info, handle)
            elif entry.link is not None:
                info = _info(entry.path, tarfile.SYMTYPE, 0o777)
                info.linkname = entry.link
                tar.addfile(info)
            elif entry.text is not None:
                data = entry.text.encode()
                info = _info(entry.path, tarfile.REGTYPE, entry.mode)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(_info(entry.path, tarfile.DIRTYPE, entry.mode))
    return destination


def _info(path: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, 0, 0, 0
    return info


def ensure_base_image(client: Any, *, workdir: Path | None = None,
                      say: Callable[[str], None] = lambda _: None) -> str:
    """`mlops-bot-base:<hash>` for this host's Python and server packages, imported on first use."""
    entries, pinned = plan_rootfs()
    tag = digest(entries, sha256_file)[:16]
    reference = f"{BASE_REPOSITORY}:{tag}"
    try:
        client.images.get(reference)
        return reference
    except Exception as exc:
        if type(exc).__name__ != "ImageNotFound":
            raise
    say(f"building the base image {reference} ({len(entries)} files; {', '.join(pinned)})")
    with tempfile.TemporaryDirectory(prefix="mlops-bot-base-", dir=workdir) as scratch:
        tarball = write_rootfs(entries, Path(scratch) / "rootfs.tar")
        try:
            client.api.import_image_from_file(str(tarball), repository=BASE_REPOSITORY, tag=tag)
        except Exception as exc:  # the SDK's APIError and friends
            raise BaseImageError(f"docker import of the base rootfs failed: {exc}") from None
    client.images.get(reference)
    return reference
