"""Metrics in Prometheus's text format (and OpenMetrics, when the scraper asks for it).

What is measured, and where:

* ``strongroom_requests_total{service, operation, status}`` and
  ``strongroom_request_duration_seconds{service, operation}``: every AWS API request, counted by
  :meth:`Metrics.observe` at the end of the pipeline (``operation`` is a name from botocore's
  model, or ``-`` when the request named none: labels never carry what a caller typed, and never
  a secret's name);
* ``strongroom_audit_flush_seconds``: each group commit of the audit trail;
* gauges read at scrape time (:class:`StateCollector`): the audit queue, rotations by state,
  secrets whose scheduled rotation is due, function workers, the storage pool, the keyring;
* the process's CPU, memory and file descriptors (prometheus_client's ``process_*``).

The hot path costs one dictionary look-up, one counter increment and one histogram observation
per request: the label children are kept per (service, operation, status), so prometheus_client's
``labels()`` runs once per combination.

Who may read them: ``GET /_strongroom/metrics`` on the API port, signed with SigV4 for the
service ``strongroom`` and allowed ``strongroom:GetMetrics`` by the policy engine
(:meth:`strongroom.server.app.App.metrics`); or, with ``serve --metrics-listen 127.0.0.1:PORT``,
a separate plain-HTTP listener on loopback without authentication, for a Prometheus on the same
machine (:func:`listen`).

Each server process keeps its own numbers. With several processes on one port a scrape is
answered by whichever process accepted the connection, so it sees that process only
(``strongroom_process_info`` names its PID); docs/metrics.md says what to do about it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strongroom import __version__

__all__ = ["Metrics", "StateCollector", "listen"]

log = logging.getLogger("strongroom.metrics")
access = logging.getLogger("strongroom.access")

# Seconds: an SQLite GetSecretValue answers in about 0.3 ms, a rotation step's Invoke in seconds.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FLUSH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_MAX_CHILDREN = 4096  # (service, operation, status) combinations kept: the model bounds them well below


class Metrics:
    """The registry of one server process, and the request observer the pipeline calls."""

    def __init__(self, *, access_log: bool = False) -> None:
        # The *_created series double the page for nothing a server needs. (Untyped in 0.26.0.)
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "strongroom_requests",
            "AWS API requests answered, by service, operation and HTTP status.",
            ["service", "operation", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "strongroom_request_duration_seconds",
            "Time from a request's headers to its answer, by service and operation.",
            ["service", "operation"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.audit_flush = Histogram(
            "strongroom_audit_flush_seconds",
            "Time to commit one batch of audit records (a group commit).",
            buckets=FLUSH_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.access_log = access_log

    def observe(
        self,
        service: str,
        operation: str | None,
        status: int,
        seconds: float,
        request_id: str,
        principal: str,
        error: str,
    ) -> None:
        """One answered request (the pipeline's last act): counted, timed, and with
        ``access_log`` one log line with its request id, principal, status and duration."""
        key = (service, operation or "-", status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(service, key[1], str(status)), self.latency.labels(service, key[1]))
            if len(self._children) < _MAX_CHILDREN:
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if self.access_log:
            access.info(
                "%s %s %d",
                service,
                key[1],
                status,
                extra={
                    "request_id": request_id,
                    "service": service,
                    "operation": key[1],
                    "principal": principal,
                    "status": status,
                    "error": error,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )

    def observe_flush(self, seconds: float) -> None:
        self.audit_flush.observe(seconds)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the ``Accept`` header asks for (OpenMetrics or Prometheus text) and its
        content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class StateCollector(Collector):
    """Gauges read when scraped. ``read`` returns ``(name, help, labels, samples)`` tuples, where
    samples is a list of (label values, value); a reading that fails is left out of that scrape
    and logged, so one failing part (the database, say) does not blank the whole page."""

    def __init__(self, read: Callable[[], Iterable[tuple[str, str, list[str], list[tuple[list[str], float]]]]]):
        self._read = read

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "strongroom_process_info", "This process: its version and PID.", labels=["version", "pid"]
        )
        info.add_metric([__version__, str(os.getpid())], 1.0)
        yield info
        try:
            readings = list(self._read())
        except Exception:
            log.exception("reading the server's state for metrics failed")
            return
        for name, text, labels, samples in readings:
            family = GaugeMetricFamily(name, text, labels=labels)
            for values, value in samples:
                family.add_metric(values, value)
            yield family


def listen(metrics: Metrics, host: str, port: int) -> Any:
    """A plain-HTTP listener on loopback answering every GET with the metrics, without
    authentication (prometheus_client's own server, on a thread). Returns the server; it stops
    with the process."""
    from prometheus_client.exposition import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
