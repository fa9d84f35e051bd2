"""`mlops-bot registry ...`: the git-tag model registry from the command line.

Read commands print GTO's JSON with `--json` (byte-for-byte what `gto show --json` / `gto history
--json` print for the same repository); write commands print the tag they created.

Imports are deliberately minimal: `registry show` must start in a few tens of milliseconds (it is
benchmarked against `gto show`), so the read commands import only `mlops_bot.registry.views`, and
the config schema (pydantic), the forge (PyGithub, httpx), tabulate and the write side of the
registry are imported inside the handlers that need them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from mlops_bot.errors import RegistryError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from mlops_bot.config import RegistrySection
    from mlops_bot.forge.base import Forge
    from mlops_bot.registry.registry import Registry

# Same value as mlops_bot.config.DEFAULT_CONFIG_PATH (checked by a test), spelled out here so the
# parser does not import the config schema.
CONFIG_PATH = ".github/mlops.yml"

# Any of these means a forge is configured (see mlops_bot.forge.select.forge_from_env).
FORGE_ENV = ("MLOPS_BOT_LOCAL_FORGE", "GITHUB_TOKEN", "GH_TOKEN", "MLOPS_BOT_APP_ID",
             "MLOPS_BOT_APP_PRIVATE_KEY", "MLOPS_BOT_APP_PRIVATE_KEY_FILE")


def _forge(required: bool) -> Forge | None:
    """The forge from the environment (`forge_from_env`). When not `required` and nothing is
    configured, None: tags-only operation. A configured but incomplete forge is an error."""
    if not required and not any(os.environ.get(key, "").strip() for key in FORGE_ENV):
        return None
    from mlops_bot.forge.select import forge_from_env

    return forge_from_env(os.environ)


def _policy(args: argparse.Namespace) -> RegistrySection | None:
    from mlops_bot.config import DEFAULT_CONFIG_PATH, config_exists, load_models, select_model

    path = Path(args.config) if args.config else Path(args.repo) / DEFAULT_CONFIG_PATH
    if not config_exists(path):
        if args.config:
            raise RegistryError(f"config file {path} does not exist")
        return None
    models = load_models(path, root=Path(args.repo))
    # One model: its policy whatever the name. Several: the policy of the model being acted on.
    return (models[0] if len(models) == 1 else select_model(models, getattr(args, "name", None), str(path))
            ).registry


def _registry(args: argparse.Namespace, *, policy: RegistrySection | None = None,
              forge: Forge | None = None) -> Registry:
    from mlops_bot.registry.registry import Registry

    return Registry(Path(args.repo), forge=forge, remote=args.remote, policy=policy)


def _print_json(data: Any) -> None:
    import json

    # GTO prints json.dumps(indent=4) through click.echo: same separators, same escaping.
    print(json.dumps(data, indent=4))


def _trailers(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise RegistryError(f"--trailer expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def _artifacts(pairs: list[str] | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pair in pairs or []:
        name, sep, path = pair.partition("=")
        out[name if sep else Path(pair).name] = Path(path if sep else pair)
    return out


def _done(event: Any) -> int:
    print(f"Created git tag '{event.tag}' ({event.action.value} {event.name}"
          + (f" {event.version}" if event.version else "") + (f" -> {event.stage}" if event.stage else "")
          + ")")
    return 0


# ----------------------------------------------------------------------------------- handlers
def _skip(reason: str) -> int:
    """A register that has nothing to do succeeds with a notice (an annotation in GitHub Actions)."""
    print(("::notice::" if os.environ.get("GITHUB_ACTIONS") == "true" else "") + f"Not registering: {reason}")
    return 0


def _report_verdict(path: Path) -> str:
    """The verdict of a validation report.json, read as untrusted data (a downloaded artifact)."""
    import json

    try:
        with path.open("rb") as handle:
            data = json.loads(handle.read(8_000_000))
    except (OSError, ValueError) as error:
        raise RegistryError(f"cannot read the validation report {path}: {error}") from None
    verdict = data.get("verdict") if isinstance(data, dict) else None
    return verdict if isinstance(verdict, str) else "missing"


def _registered_at(args: argparse.Namespace, reg: Registry) -> str | None:
    """The active version already registered at `--ref` (after fetching the remote's tags)."""
    from mlops_bot.registry import git
    from mlops_bot.registry.tags import name_to_tag

    if args.push and reg.has_remote():
        base = name_to_tag(args.name)
        try:
            # under the clone's writer lock: a registration in another process fetching the same
            # tags at the same moment would make one of the two fetches fail to update a ref
            with git.writer_lock(reg.repo):
                git.fetch_tags(reg.repo, reg.remote, [f"{base}@*", f"{base}#*"])
        except git.GitCommandError as error:
            raise RegistryError(f"cannot fetch registry tags from {reg.remote}: "
                                f"{error.stderr.strip()}") from None
    commit = git.resolve_commit(reg.repo, args.ref)
    artifact = reg.state(args.name).artifacts.get(args.name)
    found = artifact.find_version(commit=commit) if artifact else None
    return found.version if found is not None and found.is_registered and found.is_active else None


def _register(args: argparse.Namespace) -> int:
    if args.name is None:  # the model of the repository's (trusted, default-branch) config
        from mlops_bot.config import DEFAULT_CONFIG_PATH, load_config

        # several models: an error naming them (say which: `registry register NAME`)
        args.name = load_config(Path(args.repo) / DEFAULT_CONFIG_PATH, root=Path(args.repo)).model.name
    trailers = _trailers(args.trailer)
    if args.if_verdict_pass:
        verdict = _report_verdict(Path(args.if_verdict_pass))
        if verdict != "pass":
            return _skip(f"the validation verdict is {verdict!r}, not 'pass'")
        trailers.setdefault("Verdict", "pass")
    files = _artifacts(args.artifact)
    reg = _registry(args, forge=_forge(required=bool(files)))
    if args.skip_if_registered:
        existing = _registered_at(args, reg)
        # A registration stopped before its release was published is finished, not skipped.
        if existing is not None and not (files and not reg.has_release(args.name, existing, files)):
            return _skip(f"{args.ref} is already registered as {args.name} {existing}")
    from mlops_bot.registry.artifacts import with_signature

    with tempfile.TemporaryDirectory() as scratch:
        # The model's signature.json goes with it (read off the model when not given).
        files = with_signature(files, Path(scratch), _trusted_types(args))
        return _done(reg.register(args.name, version=args.version, bump=args.bump, ref=args.ref,
                                  artifacts=files, trailers=trailers, push=args.push, actor=args.actor))


def _trusted_types(args: argparse.Namespace) -> list[str]:
    """The repository's `model.trusted_types` (its config, when it has one) for loading the model."""
    from mlops_bot.config import DEFAULT_CONFIG_PATH, config_exists, load_models

    path = Path(args.repo) / DEFAULT_CONFIG_PATH
    if not config_exists(path):
        return []
    # Several models: the registered model's own list (none when the config does not declare it).
    models = load_models(path, root=Path(args.repo))
    config = models[0] if len(models) == 1 else next((m for m in models if m.model.name == args.name), None)
    return list(config.model.trusted_types) if config is not None else []


def _assign(args: argparse.Namespace) -> int:
    policy = _policy(args)
    # The forge is only read for the version's report.json verdict when a policy requires gates.
    reg = _registry(args, policy=policy, forge=_forge(required=False) if policy is not None else None)
    gates = {"pass": True, "fail": False}.get(args.gates) if args.gates else None
    return _done(reg.assign(args.name, args.stage, version=args.version, ref=args.ref, actor=args.actor,
                            gates_passed=gates, trailers=_trailers(args.trailer), push=args.push,
                            force=args.force))


def _unassign(args: argparse.Namespace) -> int:
    reg = _registry(args)
    return _done(reg.unassign(args.name, args.stage, version=args.version, ref=args.ref, actor=args.actor,
                              push=args.push))


def _deregister(args: argparse.Namespace) -> int:
    return _done(_registry(args).deregister(args.name, args.version, actor=args.actor, push=args.push))


def _deprecate(args: argparse.Namespace) -> int:
    return _done(_registry(args).deprecate(args.name, actor=args.actor, push=args.push))


def _show(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from mlops_bot.registry import views

    repo = Path(args.repo)
    try:
        at = datetime.fromisoformat(args.at) if args.at else None
    except ValueError:
        raise RegistryError(f"--at {args.at!r} is not an ISO time, e.g. 2024-05-01T12:00:00Z") from None
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    if args.json:
        _print_json(views.show_versions(repo, args.name) if args.name and at is None
                    else views.show(repo, args.name, at))
        return 0
    from tabulate import tabulate

    if args.name and at is None:  # one model: its versions, the table `gto show NAME` prints
        registered = bool(views.show(repo, args.name).get(args.name, {}).get("registered"))

        def short(value: str) -> str:  # an unregistered version is a commit: 7 hex digits, as gto
            return value[:7] if len(value) == 40 and all(c in "0123456789abcdef" for c in value) else value

        rows = [[row["artifact"] if registered else f"*{row['artifact']}", short(row["version"]),
                 ", ".join(dict.fromkeys(s["stage"] for s in row["stages"])),
                 str(datetime.fromisoformat(row["created_at"])), short(row["ref"])]
                for row in views.show_versions(repo, args.name)]
        print(tabulate(rows, headers=["artifact", "version", "stage", "created_at", "ref"],
                       tablefmt="fancy_outline", showindex=False, missingval="-") if rows else "")
        return 0
    state = views.show(repo, args.name, at)
    stages = sorted({s for row in state.values() for s in row["stage"]})
    rows = [[name, row["version"] or "-", *[row["stage"].get(s) or "-" for s in stages]]
            for name, row in sorted(state.items())]
    print(tabulate(rows, headers=["name", "latest", *[f"#{s}" for s in stages]]) if rows
          else "The registry is empty")
    return 0


def _history(args: argparse.Namespace) -> int:
    if args.json:
        from mlops_bot.registry import views

        _print_json(views.history(Path(args.repo), args.name))
        return 0
    from tabulate import tabulate

    rows = [[e.created_at.isoformat(), e.name, e.action.value, e.version or "-", e.stage or "-",
             e.commit[:7], e.actor, e.tag] for e in reversed(_registry(args).history(args.name))]
    print(tabulate(rows, headers=["timestamp", "name", "event", "version", "stage", "commit", "actor", "tag"])
          if rows else "No registry events")
    return 0


def _which(args: argparse.Namespace) -> int:
    from mlops_bot.registry import views

    found = views.which(Path(args.repo), args.rev)
    if args.json:
        _print_json(found)
    else:
        for row in found:
            stages = f" [{', '.join(row['stages'])}]" if row["stages"] else ""
            print(f"{row['name']} {row['version']}{stages}")
    return 0 if found else 1


def _download(args: argparse.Namespace) -> int:
    from mlops_bot.registry.registry import parse_spec

    if args.spec:
        name, spec = parse_spec(args.spec)
    else:
        # The baseline the config names: model.name in baseline.stage.

        from mlops_bot.config import load_models, select_model

        path = Path(args.config or Path(args.repo) / CONFIG_PATH)
        models = load_models(path, root=Path(args.repo))
        if args.if_exists and args.model and all(c.model.name != args.model for c in models):
            # A model the (base branch's) config does not declare yet has no baseline there.
            print(("::notice::" if os.environ.get("GITHUB_ACTIONS") == "true" else "")
                  + f"{path} declares no model {args.model!r}: nothing downloaded")
            return 0
        config = select_model(models, args.model, str(path))
        name, spec = config.model.name, config.baseline.stage
    if args.if_exists:
        from mlops_bot.registry.tags import SemVer

        reg = _registry(args)
        version = spec if SemVer.is_valid(spec) else reg.stage_version(name, spec)
        if version is None:
            print(("::notice::" if os.environ.get("GITHUB_ACTIONS") == "true" else "")
                  + f"No version of {name} is in stage {spec!r}: nothing downloaded, the report compares "
                  "with baseline.metrics_file when there is one")
            return 0
    reg = _registry(args, forge=_forge(required=True))
    path = reg.download(name, spec, Path(args.dest))
    print(f"Downloaded and verified {name}#{spec} into {path}")
    return 0


# ----------------------------------------------------------------------------------- parsers
def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("registry", help="git-tag model registry (GTO-compatible)")
    sub = parser.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser, write: bool) -> None:
        p.add_argument("--repo", default=".", help="git repository (default: current directory)")
        p.add_argument("--remote", default=None, help="remote to fetch/push registry tags (default origin)")
        if write:
            p.add_argument("--push", action="store_true", help="push the tag to the remote atomically")
            p.add_argument("--actor", default=None, help="who performs the operation (tagger and trailer)")
            p.add_argument("--trailer", action="append", metavar="KEY=VALUE", help="extra tag trailer")
        else:
            p.add_argument("--json", action="store_true", help="print JSON (the shape gto prints)")

    p = sub.add_parser("register", help="register a commit as a new model version")
    common(p, True)
    p.add_argument("name", nargs="?", help=f"model name (default: model.name in {CONFIG_PATH})")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--version", help="explicit version vX.Y.Z")
    group.add_argument("--bump", choices=["major", "minor", "patch"], help="bump the latest (default patch)")
    p.add_argument("--ref", default="HEAD")
    p.add_argument("--artifact", action="append", metavar="NAME=PATH", help="release asset to upload")
    p.add_argument("--if-verdict-pass", metavar="REPORT",
                   help="register only if this validation report.json has verdict pass (else exit 0 with "
                        "a notice); adds the trailer Verdict: pass")
    p.add_argument("--skip-if-registered", action="store_true",
                   help="exit 0 with a notice when --ref is already registered (re-runs are no-ops)")
    p.set_defaults(func=_register)

    for command, aliases in (("assign", ["promote"]),):
        p = sub.add_parser(command, aliases=aliases, help="assign a stage to a version (policy enforced)")
        common(p, True)
        p.add_argument("name")
        p.add_argument("--stage", required=True)
        p.add_argument("--version", default=None)
        p.add_argument("--ref", default=None, help="commit to assign (registered on the fly if needed)")
        p.add_argument("--config", default=None,
                       help=f"config with the policy (default {CONFIG_PATH})")
        p.add_argument("--gates", choices=["pass", "fail"], default=None,
                       help="the version's gate verdict (default: from its tag or report.json)")
        p.add_argument("--force", action="store_true", help="assign even if already in the stage")
        p.set_defaults(func=_assign)

    p = sub.add_parser("unassign", help="remove a stage from a version")
    common(p, True)
    p.add_argument("name")
    p.add_argument("--stage", required=True)
    p.add_argument("--version", default=None)
    p.add_argument("--ref", default=None)
    p.set_defaults(func=_unassign)

    p = sub.add_parser("deregister", help="mark a version as withdrawn")
    common(p, True)
    p.add_argument("name")
    p.add_argument("--version", required=True)
    p.set_defaults(func=_deregister)

    p = sub.add_parser("deprecate", help="deprecate a model (all its versions)")
    common(p, True)
    p.add_argument("name")
    p.set_defaults(func=_deprecate)

    p = sub.add_parser("show", help="latest version and stages of every model, or one model's versions")
    common(p, False)
    p.add_argument("name", nargs="?")
    p.add_argument("--at", default=None, help="ISO time: the registry as it was then")
    p.set_defaults(func=_show)

    p = sub.add_parser("history", help="the audit trail: every registry event")
    common(p, False)
    p.add_argument("name", nargs="?")
    p.set_defaults(func=_history)

    p = sub.add_parser("which", help="which model versions and stages sit at a commit")
    common(p, False)
    p.add_argument("rev", nargs="?", default="HEAD")
    p.set_defaults(func=_which)

    p = sub.add_parser("download", help="download a version's artifacts, verifying checksums")
    common(p, False)
    p.add_argument("spec", metavar="NAME@vX.Y.Z|NAME#STAGE", nargs="?",
                   help=f"default: model.name in baseline.stage of {CONFIG_PATH}, the PR baseline")
    p.add_argument("--dest", required=True)
    p.add_argument("--config", default=None, help=f"config naming the baseline (default {CONFIG_PATH})")
    p.add_argument("--model", default=None, help="whose baseline, when the config declares several models")
    p.add_argument("--if-exists", action="store_true",
                   help="a stage without a version is not an error: exit 0 with a notice, nothing downloaded")
    p.set_defaults(func=_download)
