"""`mlops-bot deploy NAME --target kubernetes`: the KServe target, or the Argo Rollouts engine
(`rollout.engine: argo`), wired from the command line and `rollout:` in `.github/mlops.yml`
(namespace, image, token secret, Prometheus, storage URI).

The controller runs in the deploy job itself (a runner's background process would die with the
job); the state lives in the cluster, so a re-run of the job resumes the rollout, and
`deploy status NAME --target kubernetes` reads it from there.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from mlops_bot.config import RolloutSection
from mlops_bot.errors import MlopsError
from mlops_bot.model_file import version_model_file


def add_arguments(deploy: Any) -> None:
    deploy.add_argument("--kubeconfig", help="kubernetes: kubeconfig path or content (default: "
                        "$MLOPS_BOT_KUBECONFIG, $KUBECONFIG, ~/.kube/config, in-cluster)")
    deploy.add_argument("--context", help="kubernetes: kubeconfig context")
    deploy.add_argument("--namespace", help="kubernetes: overrides rollout.kserve.namespace "
                        "(rollout.argo.namespace with engine argo)")
    deploy.add_argument("--image", help="kubernetes: the model server image (overrides rollout.kserve.image, "
                        "rollout.argo.image with engine argo)")


def _api(args: argparse.Namespace) -> Any:
    from mlops_bot.deploy.targets.cluster import connect

    kubeconfig = args.kubeconfig or os.environ.get("MLOPS_BOT_KUBECONFIG") or None
    return connect(kubeconfig, args.context)


def _namespace(args: argparse.Namespace, rollout: RolloutSection) -> str:
    engine = rollout.argo if rollout.engine == "argo" else rollout.kserve
    return str(args.namespace or engine.namespace)


def _analysis_prometheus(rollout: RolloutSection) -> str:
    """The Prometheus Argo's AnalysisRuns query (from inside the cluster)."""
    return rollout.argo.analysis_prometheus_url or (rollout.prometheus.url if rollout.prometheus else "")


def _queries(rollout: RolloutSection) -> dict[str, str]:
    """The PromQL templates `.github/mlops.yml` overrides (both engines read the same series)."""
    return {str(k): v for k, v in rollout.prometheus.queries.items()} if rollout.prometheus else {}


def argo_traffic(rollout: RolloutSection) -> dict[str, Any]:
    """The canary strategy's traffic router fields from `rollout.argo` (Argo's own names)."""
    argo = rollout.argo
    fields: dict[str, Any] = {"canaryService": argo.canary_service, "stableService": argo.stable_service}
    if argo.traffic_routing is not None:
        fields["trafficRouting"] = argo.traffic_routing.model_dump(exclude_none=True)
    return {key: value for key, value in fields.items() if value}


def storage_uri(template: str, *, model: str, version: str, repository: str, file: str) -> str:
    """The URL of a version's model release asset (`$repository`, `$tag`, `$model`, `$version`,
    `$file`: the version's model file name, model.skops or model.onnx)."""
    return Template(template).substitute(repository=repository, tag=quote(f"{model}@{version}", safe=""),
                                         model=quote(model, safe=""), version=quote(version, safe=""),
                                         file=quote(file, safe=""))


def cluster_parts(args: argparse.Namespace, name: str, rollout: RolloutSection,
                  trusted_types: list[str] | None = None) -> tuple[Any, Any]:
    """(target, state store) for `name` on the cluster the arguments point at; `trusted_types` (the
    model's `model.trusted_types`) reach every pod's server."""
    from mlops_bot.checksums import sha256_file
    from mlops_bot.deploy.routing import VersionRef
    from mlops_bot.deploy.targets.cluster import ClusterStateStore
    from mlops_bot.deploy.targets.kserve import KServeTarget, resource_name

    api = _api(args)
    namespace = _namespace(args, rollout)
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    section = "argo" if rollout.engine == "argo" else "kserve"
    template = rollout.argo.storage_uri if section == "argo" else rollout.kserve.storage_uri
    if "$repository" in template and not repository:
        raise MlopsError(f"GITHUB_REPOSITORY is not set: needed for rollout.{section}.storage_uri "
                         f"({template})")

    def storage(ref: VersionRef) -> tuple[str, str]:
        folder = Path(ref.path)  # the version as fetched, to record its model's digest
        model_file = folder / version_model_file([p.name for p in folder.iterdir() if p.is_file()],
                                                 str(folder))
        uri = storage_uri(template, model=name, version=ref.version, repository=repository,
                          file=model_file.name)
        return uri, sha256_file(model_file)

    if rollout.engine == "argo":
        from mlops_bot.deploy.targets.argo import ArgoTarget

        address = _analysis_prometheus(rollout)
        if not address:
            raise MlopsError("engine argo needs a Prometheus for its analysis: set rollout.prometheus.url"
                             " (or rollout.argo.analysis_prometheus_url) in .github/mlops.yml")
        argo = ArgoTarget(name, api, namespace=namespace, storage=storage,
                          image=args.image or rollout.argo.image, prometheus_url=address,
                          replicas=rollout.argo.replicas, token_secret=rollout.argo.token_secret,
                          queries=_queries(rollout), traffic=argo_traffic(rollout),
                          trusted_types=trusted_types or [])
        return argo, ClusterStateStore(api, namespace, resource_name(name))

    metrics = None
    if rollout.prometheus is not None:
        from mlops_bot.deploy.prometheus import PrometheusMetrics

        metrics = PrometheusMetrics(rollout.prometheus.url, _queries(rollout),
                                    timeout=rollout.prometheus.timeout)
    target = KServeTarget(name, api, namespace=namespace, storage=storage,
                          image=args.image or rollout.kserve.image, metrics_source=metrics,
                          token_secret=rollout.kserve.token_secret, min_replicas=rollout.kserve.min_replicas,
                          trusted_types=trusted_types or [])
    return target, ClusterStateStore(api, namespace, resource_name(name))


def write_manifests(args: argparse.Namespace, name: str, version: str, rollout: RolloutSection,
                    model_file: str, trusted_types: list[str] | None = None) -> int:
    """--manifests DIR: the InferenceService of every step (KServe), or the Rollout and its
    AnalysisTemplate (Argo), for review or GitOps; no cluster needed. `model_file` is the version's
    model file name (model.skops or model.onnx, as its source records it), the storage URI's `$file`."""
    from mlops_bot.deploy.targets.kserve import step_manifests

    if rollout.engine == "argo":
        return _write_argo_manifests(args, name, version, rollout, model_file, trusted_types or [])

    uri = storage_uri(rollout.kserve.storage_uri, model=name, version=version,
                      repository=os.environ.get("GITHUB_REPOSITORY", "OWNER/REPO"), file=model_file)
    manifests = step_manifests(name, version, uri, [step.weight for step in rollout.steps],
                               namespace=_namespace(args, rollout), image=args.image or rollout.kserve.image,
                               token_secret=rollout.kserve.token_secret,
                               min_replicas=rollout.kserve.min_replicas, trusted_types=trusted_types or [])
    out = Path(args.manifests)
    out.mkdir(parents=True, exist_ok=True)
    for index, manifest in enumerate(manifests, start=1):
        path = out / f"{name.replace('/', '-')}-step{index}-inferenceservice.json"
        path.write_text(json.dumps(manifest, indent=2))
        print(path)
    return 0


def _write_argo_manifests(args: argparse.Namespace, name: str, version: str, rollout: RolloutSection,
                          model_file: str, trusted_types: list[str]) -> int:
    from mlops_bot.deploy.plan import plan_from_config
    from mlops_bot.deploy.targets.argo import render_analysis, render_rollout

    plan = plan_from_config(rollout, args.config)
    namespace = _namespace(args, rollout)
    uri = storage_uri(rollout.argo.storage_uri, model=name, version=version,
                      repository=os.environ.get("GITHUB_REPOSITORY", "OWNER/REPO"), file=model_file)
    address = _analysis_prometheus(rollout)
    documents = {
        "rollout": render_rollout(name, version, "STABLE_VERSION", namespace=namespace, plan=plan,
                                  image=args.image or rollout.argo.image, storage_uri=uri, sha256=None,
                                  prometheus_url=address, replicas=rollout.argo.replicas,
                                  token_secret=rollout.argo.token_secret, traffic=argo_traffic(rollout),
                                  trusted_types=trusted_types),
        "analysistemplate": render_analysis(name, namespace, plan, _queries(rollout)),
    }
    out = Path(args.manifests)
    out.mkdir(parents=True, exist_ok=True)
    for kind, manifest in documents.items():
        path = out / f"{name.replace('/', '-')}-{kind}.json"
        path.write_text(json.dumps(manifest, indent=2))
        print(path)
    return 0


def status_store(args: argparse.Namespace, name: str, rollout: RolloutSection) -> Any:
    from mlops_bot.deploy.targets.cluster import ClusterStateStore
    from mlops_bot.deploy.targets.kserve import resource_name

    return ClusterStateStore(_api(args), _namespace(args, rollout), resource_name(name))
