"""Prometheus metrics (``GET /metrics``), with prometheus-client and one registry per app.

A registry per :class:`Metrics` (not the global default) keeps servers in one process (tests)
from colliding. Events are counted where they happen (the server and the pipeline call the
methods below); queue depths are read from the live sessions when Prometheus scrapes.

=====================================  ===========================================================
metric                                 what
=====================================  ===========================================================
``voice_bridge_sessions``              WebSocket sessions open now (gauge)
``voice_bridge_capacity``              sessions that may still open (gauge; 0 while draining)
``voice_bridge_sessions_opened_total`` sessions opened
``voice_bridge_sessions_closed_total`` sessions ended, by ``reason`` (client, idle, rate, …)
``voice_bridge_refused_total``         connections/requests refused, by ``reason``
``voice_bridge_messages_total``        client messages received
``voice_bridge_errors_total``          errors, by ``kind`` (protocol, tts, voice, internal, oom…)
``voice_bridge_error_frames_dropped_total`` error frames dropped for a client not reading them
``voice_bridge_ftts_seconds``          first token received → first audio frame sent (histogram)
``voice_bridge_segment_latency_seconds`` segment cut → its first audio queued (histogram)
``voice_bridge_stage_rtf``             compute ÷ audio time per utterance, by ``stage`` (histogram)
``voice_bridge_stage_seconds_total``   compute time, by ``stage`` (tts, voice, resample)
``voice_bridge_audio_seconds_total``   audio produced
``voice_bridge_utterances_total``      utterances completed (flushed)
``voice_bridge_output_queue_seconds``  audio waiting in sessions' output queues (``stat``: sum, max)
``voice_bridge_work_queue_segments``   segments waiting for synthesis, all sessions
``voice_bridge_buffered_text_chars``   text waiting for synthesis, all sessions
``voice_bridge_send_buffer_bytes``     bytes past the output queue (writer + kernel), ``stat``
``voice_bridge_model_queue``           model calls waiting for a worker thread
``voice_bridge_load_ratio``            demand ÷ usable cores (1.0: one more listener would not
                                       fit in real time); demand = max(open sessions × their cost
                                       per audio second, measured model load) — the HPA's metric
``voice_bridge_load_cores``            CPU-seconds of model work per wall second (the window)
``voice_bridge_committed_cores``       what the open sessions need when all speak in real time
``voice_bridge_process_cpu_cores``     the process's own CPU per wall second (model + event loop)
``voice_bridge_cores``                 cores counted; ``voice_bridge_usable_cores`` less the margin
``voice_bridge_capacity_sessions``     listeners of the default voice the usable cores carry
``voice_bridge_cost_per_audio_second`` CPU-seconds per second of audio, by ``key`` (engine+voice)
``voice_bridge_compute_seconds_total`` model steps' thread CPU time, by ``key`` (and
``voice_bridge_compute_audio_seconds_total``: the audio they made): rate() ÷ rate() = the cost
=====================================  ===========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bridge.capacity import CapacityReport

LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


@dataclass
class QueueSnapshot:
    """Queue depths of all sessions at one moment (filled by the server at scrape time)."""

    output_seconds: list[float] = field(default_factory=list)
    work_segments: int = 0
    buffered_chars: int = 0
    send_buffer_bytes: list[int] = field(default_factory=list)
    model_queue: int = 0
    sessions: int = 0
    capacity: int = 0


class _QueueCollector(Collector):
    def __init__(self, source: Callable[[], QueueSnapshot]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self._source()
        yield GaugeMetricFamily("voice_bridge_sessions", "WebSocket sessions open now", value=snap.sessions)
        yield GaugeMetricFamily("voice_bridge_capacity", "Sessions that may still open", value=snap.capacity)
        out = GaugeMetricFamily(
            "voice_bridge_output_queue_seconds", "Audio waiting in output queues", labels=["stat"]
        )
        out.add_metric(["sum"], sum(snap.output_seconds))
        out.add_metric(["max"], max(snap.output_seconds, default=0.0))
        yield out
        yield GaugeMetricFamily(
            "voice_bridge_work_queue_segments", "Segments waiting for synthesis", value=snap.work_segments
        )
        yield GaugeMetricFamily(
            "voice_bridge_buffered_text_chars", "Text waiting for synthesis", value=snap.buffered_chars
        )
        sent = GaugeMetricFamily(
            "voice_bridge_send_buffer_bytes", "Bytes past the output queue (writer + kernel)", labels=["stat"]
        )
        sent.add_metric(["sum"], sum(snap.send_buffer_bytes))
        sent.add_metric(["max"], max(snap.send_buffer_bytes, default=0))
        yield sent
        yield GaugeMetricFamily("voice_bridge_model_queue", "Model calls waiting for a worker", value=snap.model_queue)

    def describe(self) -> Iterable[Any]:
        return []


class _LoadCollector(Collector):
    def __init__(self, source: Callable[[], CapacityReport]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        report = self._source()
        yield GaugeMetricFamily(
            "voice_bridge_load_ratio", "Compute demanded per wall second / usable cores (1.0: real time)",
            value=report.load_ratio,
        )
        yield GaugeMetricFamily(
            "voice_bridge_load_cores", "CPU-seconds of model work per wall second", value=report.load_cores
        )
        yield GaugeMetricFamily(
            "voice_bridge_committed_cores", "Cores the open sessions need when all speak in real time",
            value=report.committed_cores,
        )
        if report.process_cores is not None:
            yield GaugeMetricFamily(
                "voice_bridge_process_cpu_cores", "CPU-seconds the process used per wall second",
                value=report.process_cores,
            )
        yield GaugeMetricFamily("voice_bridge_cores", "Cores the capacity counts", value=report.cores)
        yield GaugeMetricFamily("voice_bridge_usable_cores", "Cores less the margin", value=report.usable_cores)
        yield GaugeMetricFamily(
            "voice_bridge_capacity_sessions", "Listeners of the default voice the usable cores carry in real time",
            value=report.capacity_sessions,
        )
        cost = GaugeMetricFamily(
            "voice_bridge_cost_per_audio_second", "CPU-seconds per second of audio, by engine and voice", labels=["key"]
        )
        for key, value in report.cost_per_audio_second.items():
            cost.add_metric([key], value)
        yield cost

    def describe(self) -> Iterable[Any]:
        return []


class ComputeSink(Protocol):
    def observe(self, key: str, cpu_seconds: float, audio_seconds: float) -> None: ...


class Metrics:
    """The bridge's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.sessions_opened = Counter("voice_bridge_sessions_opened", "WebSocket sessions opened", registry=r)
        self.sessions_closed = Counter(
            "voice_bridge_sessions_closed", "WebSocket sessions ended, by reason", ["reason"], registry=r
        )
        self.refused = Counter("voice_bridge_refused", "Connections and requests refused, by reason", ["reason"], registry=r)
        self.messages = Counter("voice_bridge_messages", "Client messages received", registry=r)
        self.errors = Counter("voice_bridge_errors", "Errors, by kind", ["kind"], registry=r)
        self.error_frames_dropped = Counter(
            "voice_bridge_error_frames_dropped", "Error frames not queued: the client was not reading", registry=r
        )
        self.ftts = Histogram(
            "voice_bridge_ftts_seconds",
            "First token received to first audio frame sent, per utterance",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.segment_latency = Histogram(
            "voice_bridge_segment_latency_seconds",
            "Segment cut to its first audio frame queued",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage_rtf = Histogram(
            "voice_bridge_stage_rtf", "Compute time / audio time per utterance, by stage", ["stage"],
            buckets=RTF_BUCKETS, registry=r,
        )
        self.stage_seconds = Counter("voice_bridge_stage_seconds", "Compute time, by stage", ["stage"], registry=r)
        self.audio_seconds = Counter("voice_bridge_audio_seconds", "Audio produced", registry=r)
        self.utterances = Counter("voice_bridge_utterances", "Utterances completed", registry=r)
        self.compute_seconds = Counter(
            "voice_bridge_compute_seconds", "Model steps' worker-thread CPU time, by engine and voice", ["key"], registry=r
        )
        self.compute_audio_seconds = Counter(
            "voice_bridge_compute_audio_seconds", "Audio the model steps made, by engine and voice", ["key"], registry=r
        )
        self._queues: Callable[[], QueueSnapshot] = QueueSnapshot
        #: Where model steps' compute goes (the server's :class:`bridge.load.ServerLoad`).
        self.compute: ComputeSink | None = None
        self._load: Callable[[], CapacityReport] | None = None

    def watch_queues(self, source: Callable[[], QueueSnapshot]) -> None:
        """Read queue depths from ``source`` at every scrape."""
        if self._queues is QueueSnapshot:
            self.registry.register(_QueueCollector(lambda: self._queues()))
        self._queues = source

    def watch_load(self, source: Callable[[], CapacityReport]) -> None:
        """Read the load and capacity from ``source`` at every scrape."""
        if self._load is None:
            self.registry.register(_LoadCollector(lambda: self._load()))  # type: ignore[misc]
        self._load = source

    # ------------------------------------------------------------------ events
    def observe_compute(self, key: str, cpu_seconds: float, audio_seconds: float) -> None:
        """One model step (any thread): to the load meter, which keeps its own lock."""
        self.compute_seconds.labels(key).inc(max(0.0, cpu_seconds))
        self.compute_audio_seconds.labels(key).inc(max(0.0, audio_seconds))
        if self.compute is not None:
            self.compute.observe(key, cpu_seconds, audio_seconds)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def observe_segment_latency(self, seconds: float) -> None:
        self.segment_latency.observe(seconds)

    def observe_ftts(self, seconds: float) -> None:
        self.ftts.observe(seconds)

    def observe_utterance(self, stats: dict[str, float]) -> None:
        """One flushed utterance's stats (:meth:`bridge.pipeline.UtteranceClock.stats`)."""
        self.utterances.inc()
        audio = float(stats.get("audio_seconds", 0.0))
        if audio > 0:
            self.audio_seconds.inc(audio)
        for stage in ("tts", "voice", "resample"):
            seconds = float(stats.get(f"{stage}_ms", 0.0)) / 1000
            if seconds > 0:
                self.stage_seconds.labels(stage).inc(seconds)
            if stage == "tts" and stats.get("tts_rtf"):
                self.stage_rtf.labels(stage).observe(float(stats["tts_rtf"]))
            elif stage != "tts" and seconds > 0 and audio > 0:
                self.stage_rtf.labels(stage).observe(seconds / audio)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0 when absent): for tests and the soak report."""
        return self.registry.get_sample_value(name, labels) or 0.0

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
