"""Secrets never leave their step: the one `redact()` for every log line, error line, `::error`
annotation, report and artifact we write.

A secret is a value we know: the environment variables named in `SECRET_ENV_NAMES` (and any whose
name looks like one: `*_TOKEN`, `*_SECRET`, `*PASSWORD*`, `*PRIVATE_KEY*`, `*API_KEY*`), the content
of a private-key file named by `MLOPS_BOT_APP_PRIVATE_KEY_FILE`, and values registered at run time
(`register`: installation tokens minted by the App, `train.env` values that look secret). Each is
replaced by `***`, and so are its base64 basic-auth forms and every line of a multi-line secret (a PEM
key printed line by line); credentials inside URLs (`https://user:pass@host`) too.

`Redactor` is pure (secrets in, text out); `redact()` reads the process environment at call time,
so a variable set later is masked too. What is derived from it is cached by the values themselves
(a name's secret-ness, a value's forms, a key file's content by path, size and mtime, the compiled
pattern by the set of secrets), so a call costs a pass over the environment, not the regex work and
file read it took on every job (the worker redacts each job's record).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "***"
MIN_LENGTH = 6  # shorter values ("1", "true") would mask ordinary text; no real secret is that short

# The secrets mlops-bot itself reads, and the ones a GitHub Actions runner holds.
SECRET_ENV_NAMES = frozenset({
    "GITHUB_TOKEN", "GH_TOKEN", "GITHUB_APP_PRIVATE_KEY",
    "MLOPS_BOT_WEBHOOK_SECRET", "MLOPS_BOT_APP_PRIVATE_KEY", "MLOPS_BOT_ADMIN_TOKEN",
    "MLOPS_BOT_FEEDBACK_TOKEN", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
})
# Names of files whose content is a secret.
SECRET_FILE_ENV_NAMES = frozenset({"MLOPS_BOT_APP_PRIVATE_KEY_FILE"})
_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|PRIVATE_KEY|API_KEY|ACCESS_KEY|CREDENTIALS?)(_|$)", re.IGNORECASE
)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@", re.IGNORECASE)

_registered: set[str] = set()
_lock = threading.Lock()


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True for the names we know hold secrets and for names that look like one."""
    return name in SECRET_ENV_NAMES or bool(_SECRET_NAME.search(name))


def _forms(value: str) -> set[str]:
    """The value, each long line of it (multi-line keys), and the basic-auth encodings git uses."""
    return set(_frozen_forms(value))


@functools.lru_cache(maxsize=1024)
def _frozen_forms(value: str) -> frozenset[str]:
    value = value.strip()
    if len(value) < MIN_LENGTH:
        return frozenset()
    forms = {value}
    for line in value.splitlines():
        line = line.strip()
        if len(line) >= 16 and not line.startswith("-----"):  # PEM body lines, not its BEGIN/END
            forms.add(line)
    if "\n" not in value:
        for user in ("x-access-token", "token", "git"):
            forms.add(base64.b64encode(f"{user}:{value}".encode()).decode())
    return frozenset(forms)


def _file_forms(path: str) -> frozenset[str]:
    """The forms of a secret file's content, read again only when its size or mtime changed."""
    try:
        stat = os.stat(path)
    except OSError:  # an unreadable key file holds nothing to mask
        return frozenset()
    return _read_file_forms(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _read_file_forms(path: str, _size: int, _mtime_ns: int) -> frozenset[str]:
    try:
        return _frozen_forms(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return frozenset()


def secrets_from_environ(environ: Mapping[str, str], read_file: bool = True) -> set[str]:
    """Every secret value the environment holds (see the module doc)."""
    found: set[str] = set()
    for name, value in environ.items():
        if is_secret_name(name):
            found |= _frozen_forms(value)
        elif name in SECRET_FILE_ENV_NAMES and read_file and value:
            found |= _file_forms(value)
    return found


def register(*values: str) -> None:
    """Add secrets learned at run time (a minted installation token, a secret-looking train.env)."""
    with _lock:
        for value in values:
            _registered.update(_forms(value))


def register_environ(environ: Mapping[str, str]) -> None:
    """Add the secrets of an environment we were handed (not our own: `validate(environ=...)`)."""
    found = secrets_from_environ(environ)
    with _lock:
        _registered.update(found)


class Redactor:
    """Replaces a fixed set of secret values (longest first, so no secret is half-masked)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        ordered = sorted({s for s in secrets if len(s) >= MIN_LENGTH}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _URL_USERINFO.sub(rf"\1{MASK}@", text)


_process_environ: tuple[dict[object, object], frozenset[str], tuple[str, ...]] | None = None


def _process_secrets() -> set[str]:
    """`secrets_from_environ(os.environ)`, its variables' part reused while the environment is
    unchanged (compared with a copy of os.environ's own mapping: a few microseconds, against the
    tens it takes to decode every variable); secret files are checked on every call."""
    global _process_environ
    data = getattr(os.environ, "_data", None)
    if not isinstance(data, dict):
        return secrets_from_environ(os.environ)
    cached = _process_environ
    if cached is None or cached[0] != data:
        snapshot = dict(data)
        variables = {name: value for name, value in os.environ.items()}
        values = secrets_from_environ({n: v for n, v in variables.items() if n not in SECRET_FILE_ENV_NAMES})
        files = tuple(v for n, v in variables.items() if n in SECRET_FILE_ENV_NAMES and v)
        cached = _process_environ = (snapshot, frozenset(values), files)
    found = set(cached[1])
    for path in cached[2]:
        found |= _file_forms(path)
    return found


def current(environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
    """A redactor for the secrets known now: the environment's, the registered ones and `extra`."""
    with _lock:
        registered = set(_registered)
    found = _process_secrets() if environ is None else secrets_from_environ(environ)
    for value in extra:
        found |= _forms(value)
    return _redactor(frozenset(found | registered))


@functools.lru_cache(maxsize=8)
def _redactor(secrets: frozenset[str]) -> Redactor:
    return Redactor(secrets)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """`text` with every known secret (and `extra` ones) replaced by `***`."""
    return current(extra=extra)(text)


def redact_file(path: Path, redactor: Redactor | None = None) -> None:
    """Rewrite a text file (a training log) line by line with secrets masked; atomic replace."""
    redactor = redactor or current()
    temporary = path.with_name(f".{path.name}.redacting")
    with open(path, "rb") as source, open(temporary, "wb") as target:
        for raw in source:
            target.write(redactor(raw.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape"))
    os.replace(temporary, path)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redactor = current()
        record.msg = redactor(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redactor(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redactor(record.exc_text)
        return True


_FILTER = _RedactingFilter()


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Mask secrets in every record the handlers of `logger` (default: the root logger) emit."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
