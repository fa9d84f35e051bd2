"""Starts several `mlops-bot serve` processes for the cluster tests at the CPU cost of one start.

Each server spends seconds of CPU importing the same modules (pandas, scikit-learn, skops, FastAPI,
uvicorn) before it loads its model; on a loaded 2-core machine three or four of them side by side
were most of the cluster tests' setup. This process imports those modules once, then forks one
child per server; each child runs the CLI's own `main(["serve", ...])` (model loading, admin API,
metrics, uvicorn: all of it in the child, after the fork) with its output in its own log.

Usage: python serve_launcher.py '[{"args": ["serve", ...], "log": "/path"}, ...]'

The children share this process's group (the caller starts it in a new session, so the group can
be signalled as a whole). SIGTERM is passed on to every child; when any child exits, the others are
stopped and this process exits with that child's status, so a caller waiting for the servers sees
a failed start at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys


def _child(args: list[str], log: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from mlops_bot.cli import main

    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # reported in the child's log, then exit non-zero
        print(f"serve_launcher: {exc!r}", flush=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def main() -> int:
    specs = json.loads(sys.argv[1])
    # What every server imports before it can answer (the bulk of a start's CPU), done once here;
    # no thread is started by these imports, so forking afterwards is safe.
    import importlib

    for module in ("sklearn.compose", "sklearn.linear_model", "sklearn.pipeline", "sklearn.preprocessing",
                   "skops.io", "uvicorn", "mlops_bot.cli", "mlops_bot.cli.deploy",
                   "mlops_bot.deploy.batching", "mlops_bot.deploy.loading", "mlops_bot.deploy.router",
                   "mlops_bot.deploy.server"):
        importlib.import_module(module)

    children: list[int] = []
    for spec in specs:
        pid = os.fork()
        if pid == 0:
            _child(spec["args"], spec["log"])
        children.append(pid)

    def stop(_signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    pid, status = os.wait()
    children.remove(pid)
    stop(signal.SIGTERM, None)
    for child in children:
        os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
