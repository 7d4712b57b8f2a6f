"""How many examples the property tests draw.

The full count normally. Under mutation testing (``make mutation``; benchmarks/mutation.py sets
``VOICE_BRIDGE_PROPERTY_EXAMPLES``) each of hundreds of mutants runs its module's tests again, so
the count is capped and the examples are derandomized: a mutant is then killed or not the same
way on every run, and the example tests, not luck, carry the score.
"""

from __future__ import annotations

import os

from hypothesis import settings

_CAP = os.environ.get("VOICE_BRIDGE_PROPERTY_EXAMPLES")

if _CAP:
    settings.register_profile("mutation", derandomize=True, database=None)
    settings.load_profile("mutation")


def examples(full: int) -> int:
    """``full``, or the mutation run's cap when that is smaller."""
    return min(full, int(_CAP)) if _CAP else full
