"""Voice conversion (RVC): contracts in :mod:`bridge.vc.base`, the stage in :mod:`bridge.vc.converter`.

One concern per module: parameters and block geometry (:mod:`~bridge.vc.layout`), device and
precision (:mod:`~bridge.vc.device`), models shared per device (:mod:`~bridge.vc.device_models`),
voice files (:mod:`~bridge.vc.checkpoint`), the synthesizer (:mod:`~bridge.vc.synthesizer` with
its prior, flow and decoder), content features (:mod:`~bridge.vc.content`, weights in
:mod:`~bridge.vc.hubert_weights`), pitch (:mod:`~bridge.vc.pitch`, RMVPE's network in
:mod:`~bridge.vc.rmvpe_net`), retrieval, the voice's chain (:mod:`~bridge.vc.voice`), streaming
(:mod:`~bridge.vc.stream`, :mod:`~bridge.vc.pacing`), signal helpers (:mod:`~bridge.vc.signal`),
the voice cache (:mod:`~bridge.vc.cache`). :mod:`bridge.vc.rvc` gathers the public names. The
stage is built from its own settings section (:class:`bridge.config.RVCSettings`) and the
engines' device and models folder.
"""

import os

# OpenMP's default busy-waiting makes torch's CPU kernels wait for descheduled threads when
# the cores are shared (TTS threads, other sessions): measured 5-7x slower conversion on 2
# cores. Passive waiting costs little when the cores are free. It only takes effect if set
# before torch loads OpenMP, so the entry point (CLI, Docker image) should set it too; an
# explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
