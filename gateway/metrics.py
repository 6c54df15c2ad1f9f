"""Prometheus metrics of one gateway instance, in a registry of its own (no global state)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.decisions = Counter(
            "warden_decisions_total", "Policy decisions on tools/call, by effect.", ["effect"], registry=r
        )
        self.outcomes = Counter(
            "warden_call_outcomes_total", "tools/call outcomes, by outcome.", ["outcome"], registry=r
        )
        self.fail_closed = Counter(
            "warden_fail_closed_total",
            "Calls denied because policy, audit or approval storage could not answer.",
            ["reason"],
            registry=r,
        )
        self.policy_seconds = Histogram(
            "warden_policy_seconds", "Time to decide a call.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.upstream_seconds = Histogram(
            "warden_upstream_seconds", "Upstream tools/call latency.", ["server"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.call_seconds = Histogram(
            "warden_call_seconds", "Total tools/call latency in the gateway.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.policy_reloads = Counter(
            "warden_policy_reloads_total", "Policy reload attempts, by result.", ["result"], registry=r
        )
        self.upstream_up = Gauge("warden_upstream_up", "1 when the upstream is connected.", ["server"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
