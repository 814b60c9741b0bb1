"""Prometheus metrics, one registry per app (tests can build several apps in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "timbrado_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.job_outcomes = Counter(
            "timbrado_job_outcomes_total",
            "Job attempts by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.queue_depth = Gauge("timbrado_job_queue_depth", "Jobs by status", ["status"], registry=self.registry)

    def observe_job(self, kind: str, outcome: str) -> None:
        self.job_outcomes.labels(kind=kind, outcome=outcome).inc()

    def set_queue_depth(self, depth: dict[str, int]) -> None:
        for status, count in depth.items():
            self.queue_depth.labels(status=status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
