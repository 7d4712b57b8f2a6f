"""The span map: which stretch of the spoken text came from which stretch of the original.

Word timings (reported per spoken word) are to name the words as the reply spelled them:
"three dollars and fourteen cents" was ``$3.14``. Every rewrite the normalizer makes is one
:class:`Rewrite`; text between rewrites is copied unchanged, so an offset in the spoken text
maps back by walking the rewrites (:meth:`NormalizedText.original_span`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Rewrite:
    """One rewritten span: ``original[start:end]`` is spoken as ``spoken[spoken_start:spoken_end]``."""

    kind: str  # the rule that made it: "money", "time", "title", "transliterated", "skipped" …
    start: int
    end: int
    spoken_start: int
    spoken_end: int
    original: str
    spoken: str


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A segment's original text, what the engine is given, and the rewrites between them."""

    original: str
    spoken: str
    rewrites: tuple[Rewrite, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.rewrites)

    def of_kind(self, kind: str) -> list[Rewrite]:
        return [r for r in self.rewrites if r.kind == kind]

    def original_span(self, spoken_start: int, spoken_end: int) -> tuple[int, int]:
        """The original span that a spoken span came from (a spoken word inside a rewrite maps
        to the whole rewritten span: "fourteen" → ``$3.14``)."""
        return self._to_original(spoken_start, True), self._to_original(spoken_end, False)

    def _to_original(self, offset: int, is_start: bool) -> int:
        shift = 0  # original offset - spoken offset, in the copied text before ``offset``
        for rewrite in self.rewrites:
            if offset < rewrite.spoken_start or (offset == rewrite.spoken_start and not is_start):
                break
            if offset < rewrite.spoken_end or (offset == rewrite.spoken_end and not is_start):
                return rewrite.start if is_start else rewrite.end
            shift = rewrite.end - rewrite.spoken_end
        return offset + shift


@dataclass
class SpokenBuilder:
    """Builds the spoken text left to right from copied stretches and rewrites."""

    original: str
    _parts: list[str] = field(default_factory=list)
    _rewrites: list[Rewrite] = field(default_factory=list)
    _length: int = 0
    _copied_to: int = 0

    def rewrite(self, kind: str, start: int, end: int, spoken: str) -> None:
        """Replace ``original[start:end]`` (at or after the last rewrite) with ``spoken``; a space
        keeps the words apart where the span was glued to a letter or digit (``AT&T``)."""
        self._copy(start)
        if spoken and spoken[0].isalnum() and self._parts and self._parts[-1][-1:].isalnum():
            self._parts.append(" ")
            self._length += 1
        if spoken and spoken[-1].isalnum() and self.original[end : end + 1].isalnum():
            spoken_end_pad = " "
        else:
            spoken_end_pad = ""
        self._rewrites.append(
            Rewrite(kind, start, end, self._length, self._length + len(spoken), self.original[start:end], spoken)
        )
        self._parts.append(spoken + spoken_end_pad)
        self._length += len(spoken) + len(spoken_end_pad)
        self._copied_to = end

    def _copy(self, upto: int) -> None:
        if upto > self._copied_to:
            piece = self.original[self._copied_to : upto]
            self._parts.append(piece)
            self._length += len(piece)
            self._copied_to = upto

    def build(self) -> NormalizedText:
        self._copy(len(self.original))
        return NormalizedText(self.original, "".join(self._parts), tuple(self._rewrites))
