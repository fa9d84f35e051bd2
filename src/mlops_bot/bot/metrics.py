"""The bot's Prometheus metrics: deliveries by event and outcome, job failures, queue depth and the
time to answer GitHub (which must stay well under its 10 s limit)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BotMetrics:
    """One registry per bot instance, so tests and several apps in one process do not collide."""

    def __init__(self, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "mlops_bot_deliveries", "Webhook deliveries by event and outcome "
            "(queued, duplicate, ignored, unauthorized, too_large, malformed)",
            ["event", "outcome"], registry=self.registry,
        )
        self.jobs = Counter(
            "mlops_bot_jobs", "Processed jobs by event and outcome", ["event", "outcome"],
            registry=self.registry,
        )
        self.failures = Counter(
            "mlops_bot_job_failures", "Jobs whose handler raised", ["event"], registry=self.registry
        )
        self.queue_depth = Gauge(
            "mlops_bot_queue_depth", "Jobs pending or running", registry=self.registry
        )
        self.queue_depth.set_function(queue_depth)
        self.jobs_by_status = Gauge(
            "mlops_bot_queue_jobs", "Jobs in the queue database by status (pending, running, done, failed)",
            ["status"], registry=self.registry,
        )
        self.latency = Histogram(
            "mlops_bot_webhook_latency_seconds", "Time from request to the webhook answer",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.job_seconds = Histogram(
            "mlops_bot_job_duration_seconds", "Time spent handling one job",
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
