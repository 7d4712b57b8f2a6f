"""Fixtures for the voice-conversion tests: small thread count, models built once."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    # Tiny models on a small, shared machine: one intra-op thread is the fastest (thread
    # start-up and barriers cost more than these convolutions).
    torch.set_num_threads(1)
