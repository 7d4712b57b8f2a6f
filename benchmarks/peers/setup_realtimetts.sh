#!/usr/bin/env bash
# A scratch virtual environment for the RealtimeTTS peer, outside the repository: RealtimeTTS
# pins resampy (→ numba, llvmlite) and needs PyAudio even when muted, none of which the
# bridge's own environment should carry. Usage:
#   bash benchmarks/peers/setup_realtimetts.sh [VENV_DIR]   (default: ~/.cache/voice-bridge/realtimetts-venv)
# Then: python -m benchmarks run --realtimetts-python VENV_DIR/bin/python
set -euo pipefail
VENV="${1:-$HOME/.cache/voice-bridge/realtimetts-venv}"
PYTHON="${PYTHON:-python3}"
REALTIMETTS_SPEC="${REALTIMETTS_SPEC:-realtimetts==0.8.10}"
# PyAudio has no Linux wheel: it builds against PortAudio's headers.
if ! ldconfig -p | grep -q 'libportaudio\.so' || [ ! -e /usr/include/portaudio.h ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends portaudio19-dev build-essential >/dev/null
  else
    echo "install PortAudio's development files (Debian: portaudio19-dev) first" >&2; exit 1
  fi
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip wheel
# RealtimeTTS with its playback extra (PyAudio), plus Piper itself: its PiperEngine runs a
# `piper` executable per sentence; piper-tts provides one (and `python -m piper`).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REALTIMETTS_SPEC/==/[playback]==}" piper-tts
"$VENV/bin/python" -c "import RealtimeTTS, pyaudio, piper; print('RealtimeTTS', RealtimeTTS.__version__)"
echo "ready: $VENV/bin/python"
