"""The bot's Prometheus metrics: deliveries by event and outcome, jobs by outcome, job failures and
durations, queue depth and the time to answer GitHub (which must stay well under its 10 s limit).

Deliveries and the answer latency are counted by the process answering webhooks. Job metrics are
read from the queue at scrape time (`JobQueue.stats`), so they are right whether the jobs ran in
threads of this process, in the worker child process or in another replica: with several replicas
on one database every replica reports the same job totals (aggregate them with `max`, not `sum`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from mlops_bot.bot.queue import DURATION_BUCKETS, JobStats

CONTENT_TYPE = CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class JobCollector:
    """Job counters and the duration histogram from the queue's `stats()` at each scrape."""

    def __init__(self, stats: Callable[[], JobStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        jobs = CounterMetricFamily("mlops_bot_jobs", "Finished job attempts by event and outcome "
                                   "(done, refused, ignored, failed, dispatched; error: the handler raised)",
                                   labels=["event", "outcome"])
        for (event, result), count in sorted(stats.finished.items()):
            jobs.add_metric([event, result], count)
        for event, count in sorted(stats.failures.items()):
            jobs.add_metric([event, "error"], count)
        yield jobs
        failures = CounterMetricFamily("mlops_bot_job_failures", "Job attempts whose handler raised or "
                                       "whose worker died", labels=["event"])
        for event, count in sorted(stats.failures.items()):
            failures.add_metric([event], count)
        yield failures
        deferrals = CounterMetricFamily("mlops_bot_job_deferrals", "Times GitHub's rate limit deferred a "
                                        "job until it lifts (not an attempt)", labels=["event"])
        for event, count in sorted(stats.deferrals.items()):
            deferrals.add_metric([event], count)
        yield deferrals
        buckets = [(repr(bound), count) for bound, count in zip(DURATION_BUCKETS, stats.duration_buckets,
                                                                 strict=False)]
        buckets.append(("+Inf", stats.duration_count))
        yield HistogramMetricFamily("mlops_bot_job_duration_seconds", "Time spent handling one job",
                                    buckets=buckets, sum_value=stats.duration_sum)


class BotMetrics:
    """One registry per bot instance, so tests and several apps in one process do not collide."""

    def __init__(self, queue_depth: Callable[[], float], job_stats: Callable[[], JobStats] | None = None
                 ) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "mlops_bot_deliveries", "Webhook deliveries by event and outcome "
            "(queued, duplicate, ignored, unauthorized, too_large, malformed, timeout)",
            ["event", "outcome"], registry=self.registry,
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
        self.worker_restarts = Counter(
            "mlops_bot_worker_restarts", "Times the server restarted a dead worker process",
            registry=self.registry,
        )
        if job_stats is not None:
            self.registry.register(JobCollector(job_stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)
