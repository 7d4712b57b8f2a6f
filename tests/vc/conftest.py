"""Fixtures for the voice-conversion tests: small thread count, models built once."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _torch_threads() -> None:
    # The test machine is small and shared: keep intra-op parallelism modest.
    torch.set_num_threads(min(2, torch.get_num_threads()))
