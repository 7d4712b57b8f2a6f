"""Voice conversion (RVC): contracts in :mod:`bridge.vc.base`, the converter in :mod:`bridge.vc.rvc`."""

import os

# OpenMP's default busy-waiting makes torch's CPU kernels wait for descheduled threads when
# the cores are shared (TTS threads, other sessions): measured 5-7x slower conversion on 2
# cores. Passive waiting costs little when the cores are free. It only takes effect if set
# before torch loads OpenMP, so the entry point (CLI, Docker image) should set it too; an
# explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
