"""Bots that use voice-bridge: ready-made front ends, each an optional extra."""
