"""Running the repository's training command: an allow-listed environment (our secrets are never
passed to the pull request's code), a log masked line by line while the command runs, a time limit,
and a kill of the whole run (session, process group, descendants, and anything carrying the run id)
when it ends, so nothing it started outlives it."""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mlops_bot import redaction
from mlops_bot.errors import ConfigError, TrainingError

# What the training command inherits from our environment; everything else it must be given by name
# in `train.env`. Locale: LANG, LANGUAGE and every LC_*.
TRAIN_ENV_ALLOWED = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TEMP", "TMP", "TZ", "LANG", "LANGUAGE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
})
RUN_ID_VARIABLE = "MLOPS_TRAIN_RUN_ID"


def training_environment(environ: Mapping[str, str], requested: Iterable[str] = ()) -> dict[str, str]:
    """The allow-listed part of `environ` plus the names `train.env` requests. Our own secrets can
    not be requested; other secret-looking values requested are masked in everything we write."""
    env = {k: v for k, v in environ.items() if k in TRAIN_ENV_ALLOWED or k.startswith("LC_")}
    for name in requested:
        if name in redaction.SECRET_ENV_NAMES or name.startswith("MLOPS_BOT_"):
            raise ConfigError("config", "train.env",
                              f"{name} is mlops-bot's own secret and is never passed to the training "
                              "command (the pull request's code)")
        if name in environ:
            env[name] = environ[name]
            if redaction.is_secret_name(name):
                redaction.register(environ[name])
    return env


class MaskedLogPump:
    """Copies the command's output into its log as it comes, every line masked before it reaches
    the disk (a runner or a user may read the log while the command runs). A line longer than
    `max_line` is written in pieces, each but the last `keep` bytes, so a secret straddling a cut
    is still whole in the next piece. `finish()` drains what is left and returns even when a
    process that escaped the kill still holds the pipe open."""

    def __init__(self, source: IO[bytes], log: IO[bytes], redactor: redaction.Redactor, *,
                 max_line: int = 65536, keep: int = 8192) -> None:
        self._source, self._log, self._redactor = source, log, redactor
        self._max_line, self._keep = max_line, keep
        self._pending = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="train-log", daemon=True)
        self._thread.start()

    def _write(self, data: bytes) -> None:
        # Line by line, as `redaction.redact_file` does: the log reads the same however it was chunked.
        text = data.decode("utf-8", "surrogateescape")
        masked = "".join(self._redactor(line) for line in text.splitlines(keepends=True))
        self._log.write(masked.encode("utf-8", "surrogateescape"))
        self._log.flush()

    def _take(self, chunk: bytes) -> None:
        self._pending += chunk
        cut = self._pending.rfind(b"\n") + 1
        if cut:
            self._write(self._pending[:cut])
            self._pending = self._pending[cut:]
        if len(self._pending) > self._max_line:
            self._write(self._pending[: -self._keep])
            self._pending = self._pending[-self._keep :]

    def _run(self) -> None:
        fd = self._source.fileno()
        after_stop = 0
        while True:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if self._stop.is_set():
                after_stop += 1
                if not ready or after_stop > 64:  # an escaped writer: keep what came, stop reading
                    break
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._take(chunk)
        if self._pending:
            self._write(self._pending)
            self._pending = b""

    def finish(self, grace: float = 5.0) -> None:
        """Drain the output already written and stop: at end of file, or once nothing has come for
        a moment after `finish` (an escaped process holding the pipe cannot keep us waiting)."""
        self._thread.join(timeout=grace)
        self._stop.set()
        self._thread.join()
        self._source.close()


@dataclass(frozen=True)
class CommandRun:
    returncode: int
    log_path: Path


def run_command(
    command: str,
    *,
    workdir: Path,
    env: Mapping[str, str],
    timeout: float,
    log_path: Path,
) -> CommandRun:
    """Run the user's training command (no shell: `shlex.split`; write `sh -c '...'` to get one).

    The interpreter running mlops-bot is first on PATH so `python train.py` uses the same
    environment. A non-zero exit or a timeout raises TrainingError pointing at the log.
    """
    argv = shlex.split(command)
    if not argv:
        raise ConfigError("config", "train.command", "the training command is empty")
    child_env = dict(env)
    child_env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), child_env.get("PATH", os.defpath)])
    child_env[RUN_ID_VARIABLE] = run_id = uuid.uuid4().hex
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(argv, cwd=workdir, env=child_env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise TrainingError(f"training command not found: {argv[0]!r} (run from {workdir})") from None
        except NotADirectoryError:
            raise TrainingError(f"training workdir {workdir} is not a directory") from None
        assert proc.stdout is not None
        pump = MaskedLogPump(proc.stdout, log, redaction.current())
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        except BaseException:  # interrupted: leave nothing of the run behind
            kill_run(proc, run_id)
            pump.finish()
            raise
        # Whatever the command left running (a daemon, a background job) ends with it.
        kill_run(proc, run_id)
        pump.finish()
    redaction.redact_file(log_path)
    if code is None:
        raise TrainingError(f"training command timed out after {timeout:g}s and was killed; log: {log_path}")
    if code != 0:
        tail = redaction.redact(_tail(log_path))
        raise TrainingError(f"training command exited with code {code}; log: {log_path}" +
                            (f"; last output: {tail}" if tail else ""))
    return CommandRun(code, log_path)


def kill_run(proc: subprocess.Popen[bytes], run_id: str, rounds: int = 50) -> None:
    """SIGKILL every process of a training run until none is left: any process whose environment
    carries the run id (what a `setsid` double fork keeps) and its descendants; while the leader is
    not yet reaped (a timeout), also its session and process group (their ids cannot be reused while
    its zombie holds the pid). Without /proc (not Linux) only the process group is killed."""
    leader: int | None = proc.pid if proc.returncode is None else None
    if leader is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(leader, signal.SIGKILL)
    if Path("/proc/self/stat").exists():
        marker = f"{RUN_ID_VARIABLE}={run_id}".encode()
        for _ in range(rounds):
            victims = _run_processes(leader, marker)
            if not victims:
                break
            for pid in victims:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
    proc.wait()


def _run_processes(leader: int | None, marker: bytes) -> list[int]:
    """Live (not zombie) processes of the run: marked ones, the session and process group of an
    unreaped `leader`, and the descendants of all of these."""
    table: dict[int, tuple[int, int, int]] = {}  # pid -> (ppid, pgid, sid)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    ours = {pid for pid, (_, pgid, sid) in table.items() if leader is not None and leader in (pgid, sid)}
    for pid in table:
        if pid == os.getpid() or pid in ours:
            continue
        try:
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                ours.add(pid)
        except OSError:
            continue
    grew = True
    while grew:  # descendants of anything already ours
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in ours and pid not in ours:
                ours.add(pid)
                grew = True
    ours.discard(os.getpid())
    return sorted(ours)


def _tail(path: Path, limit: int = 300) -> str:
    """The log's last non-empty line (at most `limit` characters), reading only the file's end."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 65536))
            text = log.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
    last = text.splitlines()[-1] if text else ""
    return last[-limit:]


def command_env(base: Mapping[str, str], *, train: Path, holdout: Path, model: Path, predictions: Path,
                seed: int, passthrough: Iterable[str] = ()) -> dict[str, str]:
    """The training command's whole environment: `training_environment` plus the contract."""
    env = training_environment(base, passthrough)
    env.update({
        "MLOPS_TRAIN_PATH": str(train),
        "MLOPS_HOLDOUT_PATH": str(holdout),
        "MLOPS_MODEL_PATH": str(model),
        "MLOPS_PREDICTIONS_PATH": str(predictions),
        "MLOPS_SEED": str(seed),
    })
    return env
