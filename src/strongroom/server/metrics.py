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

The hot path costs a dictionary look-up, a bisection and two additions per request
(:class:`_Rows`); prometheus_client renders the page.

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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
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
        self.timings = _Timings()
        self.registry.register(self.timings)
        self._rows = self.timings.requests.rows
        ProcessCollector(registry=self.registry)
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
        ``access_log`` one log line with its request id, principal, status and duration.
        (Written out, not through :meth:`_Rows.observe`: a call less on every request.)"""
        key = (service, operation, status)
        row = self._rows.get(key)
        if row is None:
            row = self.timings.new_request_row(key)
        row[0][bisect_left(REQUEST_BUCKETS, seconds)] += 1
        row[1] += seconds
        if self.access_log:
            access.info(
                "%s %s %d",
                service,
                operation or "-",
                status,
                extra={
                    "request_id": request_id,
                    "service": service,
                    "operation": operation or "-",
                    "principal": principal,
                    "status": status,
                    "error": error,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )

    def observe_flush(self, seconds: float) -> None:
        """One audit batch committed (called on the event loop's thread)."""
        self.timings.flushes.observe((), seconds)

    def register(self, collector: Collector) -> None:
        self.registry.register(collector)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The exposition the ``Accept`` header asks for (OpenMetrics or Prometheus text) and its
        content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _Rows:
    """Histogram rows of plain counts: label values -> [counts per bucket, the last one +Inf;
    the sum]. Written by one thread (the event loop's), read by the scrape's: a scrape copies each
    row (a copy is atomic under the GIL), so a histogram's count is always its buckets' sum.

    Not prometheus_client's ``Counter`` and ``Histogram``: their ``inc`` and ``observe`` take a
    lock each and walk the buckets in Python, 3.1 µs a request against 0.5 µs here (timeit)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.bounds = [repr(float(b)) for b in buckets] + ["+Inf"]  # as prometheus_client writes them
        self.rows: dict[tuple[Any, ...], list[Any]] = {}

    def observe(self, key: tuple[Any, ...], seconds: float) -> None:
        row = self.rows.get(key)
        if row is None:
            row = self.rows.setdefault(key, [[0] * (len(self.buckets) + 1), 0.0])
        row[0][bisect_left(self.buckets, seconds)] += 1
        row[1] += seconds

    def snapshot(self) -> list[tuple[tuple[Any, ...], list[int], float]]:
        return [(key, list(row[0]), row[1]) for key, row in list(self.rows.items())]

    def family(self, name: str, text: str, labels: list[str], rows: Iterable[tuple[Any, list[int], float]]) -> Metric:
        histogram = HistogramMetricFamily(name, text, labels=labels)
        for key, counts, total in rows:
            cumulative = list(accumulate(counts))
            histogram.add_metric(list(key), list(zip(self.bounds, cumulative, strict=True)), total)
        return histogram


class _Timings(Collector):
    """The request counter and histogram (from one table keyed by service, operation and status)
    and the audit commits' histogram."""

    def __init__(self) -> None:
        self.requests = _Rows(REQUEST_BUCKETS)
        self.flushes = _Rows(FLUSH_BUCKETS)

    def new_request_row(self, key: tuple[str, str | None, int]) -> list[Any]:
        """The row of a (service, operation, status) seen for the first time (the operation is
        None for a request that named none)."""
        if len(self.requests.rows) >= _MAX_CHILDREN:  # the model bounds operations far below
            key = (key[0], None, key[2])
        return self.requests.rows.setdefault(key, [[0] * (len(REQUEST_BUCKETS) + 1), 0.0])

    def collect(self) -> Iterator[Metric]:
        rows = self.requests.snapshot()
        requests = CounterMetricFamily(
            "strongroom_requests",
            "AWS API requests answered, by service, operation and HTTP status.",
            labels=["service", "operation", "status"],
        )
        timed: dict[tuple[str, str], tuple[list[int], float]] = {}
        for (service, named, status), counts, total in rows:
            operation = named or "-"
            requests.add_metric([service, operation, str(status)], sum(counts))
            before = timed.get((service, operation))
            if before is not None:
                counts = [a + b for a, b in zip(before[0], counts, strict=True)]
                total += before[1]
            timed[(service, operation)] = (counts, total)
        yield requests
        yield self.requests.family(
            "strongroom_request_duration_seconds",
            "Time from a request's headers to its answer, by service and operation.",
            ["service", "operation"],
            [(key, counts, total) for key, (counts, total) in sorted(timed.items())],
        )
        yield self.flushes.family(
            "strongroom_audit_flush_seconds",
            "Time from handing a batch of audit records to the database to its calls resuming "
            "(the group commit, as the waiting requests see it).",
            [],
            self.flushes.snapshot() or [((), [0] * (len(FLUSH_BUCKETS) + 1), 0.0)],
        )


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
