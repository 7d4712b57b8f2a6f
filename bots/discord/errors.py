"""Failures the bot tells its users about, each with the sentence it posts in the channel.

Exceptions carry ``user_message`` (what the channel sees: short, says what to do) apart from
``str(exc)`` (what the log gets: the technical detail), so handlers never format tracebacks
into chat and never leave the user with silence.
"""

from __future__ import annotations


class UserFacingError(Exception):
    """An error with a sentence for the channel."""

    user_message: str = "Something went wrong."

    def __init__(self, detail: str = "", user_message: str | None = None) -> None:
        super().__init__(detail or user_message or self.user_message)
        if user_message is not None:
            self.user_message = user_message


class BadRequest(UserFacingError):
    """The command's input is not acceptable (bad pitch, unknown voice, empty prompt)."""


class NotInVoice(UserFacingError):
    user_message = "I'm not in a voice channel. Use `/join` while you are in one."


class QueueFull(UserFacingError):
    user_message = "I already have enough queued up. Try again in a moment, or use `/stop`."


class BridgeUnavailable(UserFacingError):
    user_message = "My voice server isn't reachable right now, so I can't speak. I'll retry on the next request."


class BridgeLost(UserFacingError):
    user_message = "I lost my connection to the voice server mid-sentence. I'll reconnect on the next request."


class LLMError(UserFacingError):
    """Any failure of the language model; what it already said is still spoken."""

    user_message = "My language model returned an error."


class LLMUnavailable(LLMError):
    user_message = "I can't reach my language model right now. Please try again later."


class LLMTimeout(LLMError):
    user_message = "My language model took too long to answer. Please try again."


class LLMFailed(LLMError):
    user_message = "My language model returned an error."


class VoiceFailed(UserFacingError):
    user_message = "Playback in the voice channel failed."
