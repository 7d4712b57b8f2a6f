"""Latency and throughput benchmarks for voice-bridge (figures, never unit-test assertions)."""
