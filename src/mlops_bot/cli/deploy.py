"""`mlops-bot deploy ...` (canary rollouts) and `mlops-bot serve ...` (the model server)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlops_bot.config import (
    DEFAULT_CONFIG_PATH,
    MlopsConfig,
    RolloutSection,
    config_exists,
    load_models,
    select_model,
)
from mlops_bot.deploy.serve_args import TRUSTED_TYPE_FLAG
from mlops_bot.errors import MlopsError
from mlops_bot.forge.base import Forge

ACTIONS = ("abort", "rollback", "promote", "status", "stop")


def _forge() -> Forge | None:
    """The forge as the rest of the CLI reads it (token, local forge, or the App's
    MLOPS_BOT_APP_ID + private key); None when nothing is configured."""
    from mlops_bot.cli.registry import FORGE_ENV

    if not any(os.environ.get(key, "").strip() for key in FORGE_ENV):
        return None
    from mlops_bot.forge.select import forge_from_env

    forge: Forge = forge_from_env(os.environ)
    return forge


def _model_config(config: str, model: str | None) -> MlopsConfig | None:
    """The config of `model` (a config with one model: that one, whatever the name; several: the
    named model's, an error listing them without a name or for an unknown one); None when the
    default config file is absent."""
    if config_exists(config):
        models = load_models(config)
        return models[0] if len(models) == 1 else select_model(models, model, config)
    if config != DEFAULT_CONFIG_PATH:
        raise MlopsError(f"config file {config} not found")
    return None


def _rollout(config: str, model: str | None) -> RolloutSection:
    """The `rollout` section of `model` (defaults without a config file)."""
    found = _model_config(config, model)
    return found.rollout if found is not None else RolloutSection()


def _trusted_types(config: str, model: str | None) -> list[str]:
    """The `model.trusted_types` of `model`: what its skops file may need beyond our allow-list."""
    found = _model_config(config, model)
    return list(found.model.trusted_types) if found is not None else []


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy", help="roll a model version out as a canary (or abort/rollback/promote/status/stop)",
        description="mlops-bot deploy NAME [--version vX.Y.Z | --stage STAGE] --target local [--wait]; "
        "mlops-bot deploy abort|rollback|promote|status|stop [NAME]",
    )
    deploy.add_argument("words", nargs="+", metavar="NAME | ACTION [NAME]")
    which = deploy.add_mutually_exclusive_group()
    which.add_argument("--version", help="the version to roll out (vX.Y.Z)")
    which.add_argument("--stage", help="roll out the version the registry holds in this stage")
    deploy.add_argument("--target", choices=("local", "docker", "kubernetes"), default="local")
    deploy.add_argument("--wait", action="store_true", help="walk the steps in this process until done")
    deploy.add_argument("--state-dir", default=".mlops/deploy", help="rollout state, server pid/port/token")
    deploy.add_argument("--config", default=DEFAULT_CONFIG_PATH)
    deploy.add_argument("--repo", default=".", help="the git repository holding the registry tags")
    deploy.add_argument("--models", help="a directory of VERSION/ folders (model.skops or model.onnx) "
                        "instead of the registry")
    deploy.add_argument("--timeout", type=float, default=None, help="give up waiting after SECONDS")
    deploy.add_argument("--manifests", help="kubernetes: write the manifests here instead of applying")
    from mlops_bot.cli.deploy_cluster import add_arguments

    add_arguments(deploy)
    deploy.set_defaults(func=_deploy)

    serve = subparsers.add_parser("serve", help="run the model server (OIP v2) on 127.0.0.1")
    serve.add_argument("name", help="the model name clients address (/v2/models/NAME)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--model", help="a model directory or a .skops/.onnx file to serve as the "
                       "stable version")
    serve.add_argument("--version", default="v0.0.0", help="the version label of --model")
    serve.add_argument("--config", help="the repository's config: its `model.trusted_types` for NAME (or "
                       "its only model) are trusted when loading every version, as validate does")
    serve.add_argument(TRUSTED_TYPE_FLAG, action="append", default=[], metavar="PACKAGE.MODULE.TYPE",
                       help="an exact type name a skops model file may need beyond the allow-list, as in "
                       "`model.trusted_types` (repeatable; for servers started without the config)")
    serve.add_argument("--model-url", help="download the version's model.skops or model.onnx release asset "
                       "from this URL at start, with the SHA256SUMS beside it and the files it lists "
                       "(token: MLOPS_BOT_MODEL_TOKEN), into --model-dir")
    serve.add_argument("--model-sha256", help="refuse a --model-url download whose SHA-256 differs")
    serve.add_argument("--model-dir", default="/mnt/models", help="where --model-url is saved")
    serve.add_argument("--log-dir", help="record sampled predictions here (monitoring)")
    serve.add_argument("--sample-rate", type=float, default=1.0)
    serve.add_argument("--max-body-bytes", type=int, default=32 * 1024 * 1024,
                       help="refuse larger inference bodies with 413 (default 32 MiB)")
    serve.add_argument("--max-batch-rows", type=int, default=0,
                       help="adaptive batching: score concurrent requests together up to this many rows "
                            "(default 0: off, each request scored alone)")
    serve.add_argument("--max-batch-delay-ms", type=float, default=2.0,
                       help="with --max-batch-rows: how long a request may wait for others (default 2)")
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mlops_bot.deploy.batching import BatchPolicy
    from mlops_bot.deploy.router import ModelRouter
    from mlops_bot.deploy.routing import RoutingRequest, VersionRef
    from mlops_bot.deploy.server import create_app

    if args.max_body_bytes < 1024:
        raise MlopsError(f"--max-body-bytes {args.max_body_bytes}: expected at least 1024 bytes")
    if not 0.0 < args.sample_rate <= 1.0:
        raise MlopsError(f"--sample-rate {args.sample_rate}: expected a fraction in (0, 1], e.g. 0.1")
    token = os.environ.get("MLOPS_BOT_ADMIN_TOKEN") or None
    feedback_token = os.environ.get("MLOPS_BOT_FEEDBACK_TOKEN") or None
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    if not loopback and token:
        print("mlops-bot: warning: the admin API is reachable beyond loopback", file=sys.stderr)
    if not loopback and args.log_dir and not feedback_token:
        raise MlopsError("serving beyond loopback with a prediction log exposes POST /v2/feedback: set "
                         "MLOPS_BOT_FEEDBACK_TOKEN so only your labelling system can post labels")
    log = None
    if args.log_dir:
        from mlops_bot.monitor.log import PredictionLog

        log = PredictionLog(Path(args.log_dir), sample_rate=args.sample_rate)
    if args.max_batch_rows < 0 or not 0 <= args.max_batch_delay_ms <= 1000:
        raise MlopsError("--max-batch-rows must be >= 0 and --max-batch-delay-ms within 0..1000")
    if args.model_url:
        if args.model:
            raise MlopsError("give --model or --model-url, not both")
        from mlops_bot.deploy.delivery import fetch_model

        args.model = str(fetch_model(args.model_url, args.model_sha256, Path(args.model_dir),
                                     token=os.environ.get("MLOPS_BOT_MODEL_TOKEN") or None))
    trusted = list(args.trusted_type)
    if args.config:
        trusted += _trusted_types(args.config, args.name)
    batching = BatchPolicy(max_rows=args.max_batch_rows, max_delay=args.max_batch_delay_ms / 1000)
    router = ModelRouter(args.name, prediction_log=log, batching=batching, trusted_types=trusted)
    if args.model:
        router.set_versions(RoutingRequest(stable=VersionRef(version=args.version, path=args.model)))
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; exiting through
    # SystemExit instead lets the prediction log flush its buffer below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        app = create_app(router, admin_token=token, log_dir=args.log_dir, feedback_token=feedback_token,
                         max_body_bytes=args.max_body_bytes)
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        router.close()
        if log is not None:
            log.close()
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _target(args: argparse.Namespace, name: str) -> Any:
    state_dir = Path(args.state_dir)
    if args.target == "local":
        from mlops_bot.deploy.targets.local import LocalTarget

        return LocalTarget(state_dir, name, trusted_types=_trusted_types(args.config, name))
    if args.target == "docker":
        from mlops_bot.deploy.targets.docker import DockerTarget

        return DockerTarget(state_dir, name, trusted_types=_trusted_types(args.config, name))
    raise MlopsError(f"unknown target {args.target!r}")


def _deploy(args: argparse.Namespace) -> int:
    words = list(args.words)
    if words[0] in ACTIONS:
        return _action(args, words[0], words[1] if len(words) > 1 else None)
    if len(words) != 1:
        raise MlopsError(f"expected one model name, got {' '.join(words)}")
    name = words[0]
    rollout = _rollout(args.config, name)
    forge = _forge()
    registry = None
    if args.models:
        from mlops_bot.deploy.sources import DirectorySource

        source: Any = DirectorySource(Path(args.models))
    else:
        from mlops_bot.deploy.sources import RegistrySource
        from mlops_bot.registry.registry import Registry

        registry = Registry(Path(args.repo), forge=forge)
        source = RegistrySource(registry)
    spec = args.version or args.stage or rollout.stage
    version = source.resolve(name, spec)

    if args.target == "kubernetes" and args.manifests:
        from mlops_bot.cli.deploy_cluster import write_manifests

        return write_manifests(args, name, version, rollout, source.model_file(name, version),
                               _trusted_types(args.config, name))
    if not args.wait and args.target != "kubernetes":  # on a cluster the job itself drives the steps
        return _background(args, name, version)

    from mlops_bot.deploy.controller import RolloutController, StateStore
    from mlops_bot.deploy.plan import plan_from_config

    plan = plan_from_config(rollout, args.config)
    if args.target == "kubernetes":
        from mlops_bot.cli.deploy_cluster import cluster_parts

        target, store = cluster_parts(args, name, rollout, _trusted_types(args.config, name))
    else:
        target, store = _target(args, name), StateStore(Path(args.state_dir), name)
    engine = RolloutController
    if args.target == "kubernetes" and rollout.engine == "argo":
        from mlops_bot.deploy.argo_controller import ArgoController

        engine = ArgoController
    controller = engine(
        name, plan, target, source, store, cache=Path(args.state_dir) / "models", forge=forge,
        registry=registry,
        watch_stage=args.stage, out=sys.stdout,
    )
    state = controller.run(version, timeout=args.timeout)
    stable = state.stable.version if state.stable else None
    print(json.dumps({"model": name, "phase": state.phase, "stable": stable,
                      "reason": state.reason, "endpoint": target.endpoint}))
    return 0 if state.phase in ("promoted", "rolled_back", "idle") else 1


def _background(args: argparse.Namespace, name: str, version: str) -> int:
    """Start the controller as its own process and return: the rollout goes on after we exit."""
    command = [sys.executable, "-m", "mlops_bot", "deploy", name, "--version", version, "--wait",
               "--target", args.target, "--state-dir", args.state_dir, "--config", args.config,
               "--repo", args.repo]
    if args.models:
        command += ["--models", args.models]
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(state_dir / f"{name.replace('/', '_')}.controller.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    log.close()
    print(f"rollout of {name} {version} started in the background (controller pid {process.pid}); "
          f"follow it with: mlops-bot deploy status {name} --state-dir {args.state_dir}")
    return 0


def _action(args: argparse.Namespace, action: str, name: str | None) -> int:
    from mlops_bot.deploy.controller import StateStore

    if action in ("status", "stop"):
        if name is None:
            raise MlopsError(f"which model? mlops-bot deploy {action} NAME")
        if args.target == "kubernetes":
            from mlops_bot.cli.deploy_cluster import status_store

            if action == "stop":
                raise MlopsError("deploy stop is for the local and docker targets; on a cluster, delete the "
                                 "InferenceService (or the Argo Rollout) with kubectl")
            state = status_store(args, name, _rollout(args.config, name)).load(name)
        else:
            state = StateStore(Path(args.state_dir), name).load(name)
        if action == "stop" and args.target == "docker":
            from mlops_bot.deploy.targets.docker import DockerTarget

            DockerTarget(Path(args.state_dir), name).stop()
            print(f"stopped the model server container of {name}")
            return 0
        if action == "stop":
            from mlops_bot.deploy.targets.local import LocalTarget

            info = Path(args.state_dir) / f"{name.replace('/', '_')}.server.json"
            if info.exists():
                LocalTarget(Path(args.state_dir), name).stop()
                print(f"stopped the model server of {name}")
            return 0
        print(json.dumps({
            "model": name, "phase": state.phase, "stable": state.stable.version if state.stable else None,
            "canary": state.canary.version if state.canary else None, "weight": state.weight,
            "step": state.step + 1, "reason": state.reason,
            "last": state.history[-1].message if state.history else "",
        }, indent=2))
        return 0
    forge = _forge()
    if forge is None:
        raise MlopsError("no forge configured: set GITHUB_TOKEN (+ GITHUB_REPOSITORY) or "
                         "MLOPS_BOT_LOCAL_FORGE")
    from mlops_bot.deploy.control import request_action

    environment = _rollout(args.config, name).environment
    actor = os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    request_action(forge, environment, action, actor)  # type: ignore[arg-type]
    print(f"asked the rollout in {environment} to {action}")
    return 0
