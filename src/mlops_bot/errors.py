"""Errors a user can fix. The CLI turns them into exit code 2 and one clear line, never a traceback."""

from __future__ import annotations


class MlopsError(Exception):
    """Base class for errors with a message meant for a person."""

    exit_code = 2


class ConfigError(MlopsError):
    """The config file is malformed: names the file, the key path and what was expected."""

    def __init__(self, path: str, key: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.key = key
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {key or '<root>'}: {message}")


class DataError(MlopsError):
    """A data file is missing, unreadable, empty or lacks the columns we need."""


class TrainingError(MlopsError):
    """The user's training command failed, timed out or broke its output contract."""


class RegistryError(MlopsError):
    """A registry operation cannot be done (unknown version, bad name, lost race, ...)."""


class PolicyError(MlopsError):
    """A promotion or command was refused by policy (stage order, permission, gates)."""


class ForgeError(MlopsError):
    """The forge (GitHub or the local forge) refused or failed a request."""


class RateLimited(ForgeError):
    """GitHub's rate limit (primary or secondary) holds for longer than we wait inline: `until`
    (epoch seconds) is when requests may go again. The bot defers the job until then."""

    def __init__(self, message: str, until: float) -> None:
        super().__init__(message)
        self.until = until


class IntegrityError(MlopsError):
    """A downloaded artifact does not match its recorded checksum, or a model file is untrusted."""


class MissingExtraError(MlopsError):
    """A command needs a package of an optional extra (`mlops-bot[serve]`, ...) that is not installed."""
