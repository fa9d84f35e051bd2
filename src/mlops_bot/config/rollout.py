"""The `rollout` section: canary steps, their gates and the cluster targets' settings."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mlops_bot.config.fields import Duration, Strict, check_stage_name, parse_duration


class RolloutStep(Strict):
    """Set the canary weight, then hold for a duration or until a manual /promote."""

    weight: int = Field(ge=0, le=100)
    hold: float | Literal["manual"] = 60.0

    @field_validator("hold", mode="before")
    @classmethod
    def _hold(cls, value: Any) -> float | str:
        return value if value == "manual" else parse_duration(value)


class RolloutGates(Strict):
    min_success_rate: float | None = Field(default=0.99, ge=0, le=1)
    max_p99_latency_ms: float | None = Field(default=500.0, gt=0)
    max_p99_latency_ratio: float | None = Field(default=1.5, gt=0, description="canary p99 / stable p99")
    max_prediction_drift: float | None = Field(
        default=0.2, ge=0, description="Jensen-Shannon distance between canary and stable predictions"
    )
    min_requests: int = Field(default=50, ge=0, description="per step; fewer is inconclusive")


PrometheusQueryName = Literal["requests", "errors", "client_errors", "latency_buckets", "latency_sum",
                              "predictions"]


class RolloutPrometheus(Strict):
    """Where the cluster targets read the gates' figures (deploy/prometheus.py has the defaults)."""

    url: str = Field(description="Prometheus base URL, e.g. http://prometheus.monitoring:9090")
    queries: dict[PrometheusQueryName, str] = Field(
        default_factory=dict,
        description="PromQL templates ($model, $namespace, $version) replacing the defaults",
    )
    timeout: Duration = 10.0

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float:
        return parse_duration(value)


class RolloutKServe(Strict):
    """The KServe target: where the InferenceService lives and what it runs."""

    namespace: str = "default"
    image: str = Field(default="ghcr.io/mlops-bot/mlops-bot-server:latest",
                       description="the model server image (built by the release workflow)")
    token_secret: str | None = Field(
        default=None, description="Secret with key `token` for private release assets"
    )
    min_replicas: int = Field(default=1, ge=0)
    storage_uri: str = Field(
        default="https://github.com/$repository/releases/download/$tag/$file",
        description="where the pod downloads the version's model ($repository, $tag, $model, $version, "
                    "$file: model.skops or model.onnx, whichever the version has; SHA256SUMS and the "
                    "files it lists are fetched from the same folder)",
    )


class ArgoSMI(Strict):
    """Argo's `trafficRouting.smi` (a TrafficSplit of the SMI spec, e.g. Linkerd)."""

    rootService: str | None = None
    trafficSplitName: str | None = None


class ArgoNginx(Strict):
    """Argo's `trafficRouting.nginx`: a canary Ingress beside the stable one."""

    stableIngress: str | None = None
    stableIngresses: list[str] | None = None
    annotationPrefix: str | None = None
    additionalIngressAnnotations: dict[str, str] | None = None
    canaryIngressAnnotations: dict[str, str] | None = None


class ArgoIstioTLSRoute(Strict):
    port: int | None = None
    sniHosts: list[str] | None = None


class ArgoIstioTCPRoute(Strict):
    port: int | None = None


class ArgoIstioVirtualService(Strict):
    name: str
    routes: list[str] | None = None
    tlsRoutes: list[ArgoIstioTLSRoute] | None = None
    tcpRoutes: list[ArgoIstioTCPRoute] | None = None


class ArgoIstioDestinationRule(Strict):
    name: str
    canarySubsetName: str
    stableSubsetName: str


class ArgoIstio(Strict):
    """Argo's `trafficRouting.istio`: weights written into VirtualService routes."""

    virtualService: ArgoIstioVirtualService | None = None
    virtualServices: list[ArgoIstioVirtualService] | None = None
    destinationRule: ArgoIstioDestinationRule | None = None


class ArgoTrafficRouting(Strict):
    """Argo Rollouts' `spec.strategy.canary.trafficRouting`, passed through as written (Argo's own
    field names; the providers mlops-bot validates: SMI, NGINX, Istio). With it a step's weight is
    the share of requests the router sends to the canary, not a share of pods."""

    smi: ArgoSMI | None = None
    nginx: ArgoNginx | None = None
    istio: ArgoIstio | None = None
    maxTrafficWeight: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one_router(self) -> ArgoTrafficRouting:
        if self.smi is None and self.nginx is None and self.istio is None:
            raise ValueError("expected a traffic router: one of smi, nginx, istio (Argo's field names)")
        return self


class RolloutArgo(Strict):
    """The Argo Rollouts engine (`rollout.engine: argo`): a Rollout of plain pods that Argo steps."""

    namespace: str = "default"
    image: str = Field(default="ghcr.io/mlops-bot/mlops-bot-server:latest",
                       description="the model server image (built by the release workflow)")
    token_secret: str | None = Field(
        default=None, description="Secret with key `token` for private release assets"
    )
    replicas: int = Field(default=4, ge=1, description="pods; without a traffic router Argo's weights "
                          "are pod shares (10% of 4 pods is 1 pod)")
    storage_uri: str = Field(
        default="https://github.com/$repository/releases/download/$tag/$file",
        description="where the pod downloads the version's model ($repository, $tag, $model, $version, "
                    "$file: model.skops or model.onnx, whichever the version has; SHA256SUMS and the "
                    "files it lists are fetched from the same folder)",
    )
    analysis_prometheus_url: str | None = Field(
        default=None, description="the Prometheus Argo's controller queries (default: rollout.prometheus.url)"
    )
    traffic_routing: ArgoTrafficRouting | None = Field(
        default=None, description="Argo's trafficRouting block (smi, nginx or istio), for exact weights "
                                  "(needs canary_service and stable_service)"
    )
    canary_service: str | None = Field(default=None, description="the Service Argo points at the canary pods")
    stable_service: str | None = Field(default=None, description="the Service Argo points at the stable pods")

    @model_validator(mode="after")
    def _services(self) -> RolloutArgo:
        routing = self.traffic_routing
        istio = routing.istio if routing is not None else None
        subsets = istio is not None and istio.destinationRule is not None
        if routing is not None and not subsets and not (self.canary_service and self.stable_service):
            raise ValueError("traffic_routing needs canary_service and stable_service: the two Services "
                             "(selecting the model's pods) Argo points at the canary and the stable pods "
                             "(Istio's subset-level split, destinationRule, needs none)")
        return self


class RolloutSection(Strict):
    environment: str = "production"
    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(weight=10, hold=30), RolloutStep(weight=50, hold=30)],
        min_length=1,
    )
    gates: RolloutGates = Field(default_factory=RolloutGates)
    interval: Duration = 5.0
    initial_delay: Duration = 0.0
    failure_limit: int = Field(default=1, ge=1)
    progress_deadline: Duration = 1800.0
    on_inconclusive: Literal["pause", "abort"] = "pause"
    stage: str = "production"
    shadow: bool = False
    prometheus: RolloutPrometheus | None = None
    kserve: RolloutKServe = Field(default_factory=RolloutKServe)
    engine: Literal["kserve", "argo"] = Field(
        default="kserve", description="with --target kubernetes: KServe canaries or Argo Rollouts"
    )
    argo: RolloutArgo = Field(default_factory=RolloutArgo)

    @field_validator("stage")
    @classmethod
    def _stage_name(cls, value: str) -> str:
        return check_stage_name(value)

    @field_validator("interval", "initial_delay", "progress_deadline", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return parse_duration(value)
