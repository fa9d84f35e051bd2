"""`mlops-bot bot serve` (the webhook server) and `mlops-bot bot handle-event` (the same handler
code, run once inside a GitHub Actions job on the event that started it)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from mlops_bot.errors import MlopsError
from mlops_bot.redaction import install_log_redaction


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bot", help="the webhook bot: comment commands and dispatches")
    sub = parser.add_subparsers(dest="bot_command", metavar="SUBCOMMAND")

    serve = sub.add_parser("serve", help="run the webhook server (POST /webhook, /healthz, /metrics)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    serve.add_argument("--state-dir", type=Path, default=None,
                       help="queue database and repository clones "
                       "(default: $MLOPS_BOT_STATE_DIR or .mlops-bot)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker threads draining the queue (0: only accept and queue)")
    serve.add_argument("--worker-threads-here", action="store_true",
                       help="run the workers as threads of the server process instead of a child process")
    serve.add_argument("--max-connections", type=int, default=100,
                       help="connections read and answered at once; more wait, unread, for a place "
                       "(default 100)")
    serve.add_argument("--max-waiting", type=int, default=1000,
                       help="connections waiting for a place; beyond them one is refused with 503 "
                       "(default 1000)")
    serve.add_argument("--job-seconds", type=float, default=900.0,
                       help="a job running longer gets its worker process killed and restarted (default 900)")
    serve.set_defaults(func=_serve)

    work = sub.add_parser("work", help="drain the bot's queue (started by `serve`, or run on its own)")
    work.add_argument("--state-dir", type=Path, default=None)
    work.add_argument("--threads", type=int, default=1)
    work.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    work.add_argument("--memory-mb", type=int, default=None,
                      help="address-space limit of the worker process (default $MLOPS_BOT_WORKER_MEMORY_MB, "
                      "else 4096; 0: none): a job past it fails with MemoryError, other jobs go on")
    work.add_argument("--priority", choices=("idle", "batch", "normal"), default=None,
                      help="CPU class: idle (Linux SCHED_IDLE: runs on what answering webhooks leaves), "
                      "batch (SCHED_BATCH, nice 19) or normal (default $MLOPS_BOT_WORKER_PRIORITY, "
                      "else idle when started by `serve`, normal otherwise)")
    work.set_defaults(func=_work)

    handle = sub.add_parser("handle-event", help="handle one event payload (inside GitHub Actions)")
    handle.add_argument("--event", required=True, help="event name, e.g. issue_comment ($GITHUB_EVENT_NAME)")
    handle.add_argument("--payload", required=True, type=Path, help="payload file ($GITHUB_EVENT_PATH)")
    handle.add_argument("--repo-dir", type=Path, default=None,
                        help="checkout of the repository (default: $GITHUB_WORKSPACE, else a clone)")
    handle.add_argument("--state-dir", type=Path, default=None)
    handle.set_defaults(func=_handle_event)
    parser.set_defaults(func=lambda _args: (parser.print_help(), 2)[1])


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("MLOPS_BOT_STATE_DIR") or ".mlops-bot")


def _serve(args: argparse.Namespace) -> int:
    from mlops_bot.bot.app import BotConfig, WebhookBot
    from mlops_bot.bot.serving import serve
    from mlops_bot.bot.wiring import handler_from_env

    logging.basicConfig(level=os.environ.get("MLOPS_BOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # no token, key or webhook secret in a log line
    from mlops_bot.bot.connection_limits import ConnectionLimits

    config = BotConfig.from_env(os.environ, _state_dir(args), args.workers,
                                worker_process=not args.worker_threads_here)
    config.limits = ConnectionLimits(max_connections=args.max_connections, max_waiting=args.max_waiting)
    config.job_seconds = args.job_seconds
    from mlops_bot.bot.queue import open_queue

    # One database for the queue, the cool-downs and what replicas share of GitHub (token, limits).
    queue = open_queue(config.state_dir, config.queue_environ(), server=True)
    bot = WebhookBot(config, handler_from_env(os.environ, config.state_dir, cooldowns=queue, shared=queue),
                     queue=queue)
    print(f"mlops-bot: listening on http://{args.host}:{args.port}/webhook", file=sys.stderr, flush=True)
    serve(bot, args.host, args.port)
    return 0


def _work(args: argparse.Namespace) -> int:
    from mlops_bot.bot.queue import open_queue
    from mlops_bot.bot.wiring import handler_from_env
    from mlops_bot.bot.worker import Worker, die_with_parent, limit_memory, lower_priority, run_worker_process

    if args.parent_pid is not None and not die_with_parent(args.parent_pid):
        return 0  # the server that started us is gone already
    logging.basicConfig(level=os.environ.get("MLOPS_BOT_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    install_log_redaction()
    # Answering GitHub within its 10 s comes first; a job can wait. Before any thread starts.
    priority = args.priority or os.environ.get("MLOPS_BOT_WORKER_PRIORITY", "").strip() or (
        "idle" if args.parent_pid is not None else "normal")
    logging.getLogger("mlops_bot.bot").info("worker CPU priority: %s", lower_priority(priority))
    memory = args.memory_mb if args.memory_mb is not None else int(
        os.environ.get("MLOPS_BOT_WORKER_MEMORY_MB", "4096") or 0)
    if memory > 0:
        limit_memory(memory * 1024 * 1024)
    state = _state_dir(args)
    queue = open_queue(state, os.environ)
    handler = handler_from_env(os.environ, state, cooldowns=queue, shared=queue)
    worker = Worker(queue, handler, poll_seconds=0.05)
    run_worker_process(worker, args.threads, args.parent_pid)
    return 0


def _handle_event(args: argparse.Namespace) -> int:
    from mlops_bot.bot.wiring import handler_from_env

    try:
        payload = json.loads(args.payload.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise MlopsError(f"cannot read the event payload {args.payload}: {error}") from None
    repo_dir = args.repo_dir or (Path(os.environ["GITHUB_WORKSPACE"]) if os.environ.get("GITHUB_WORKSPACE")
                                 else None)
    handler = handler_from_env(os.environ, _state_dir(args), repo_dir)
    outcome = handler.handle(args.event, payload)
    print(json.dumps({"status": outcome.status, "detail": outcome.detail}))
    return 1 if outcome.status == "failed" else 0
