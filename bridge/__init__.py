"""voice-bridge: LLM tokens in, a character's voice out, live."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voice-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
