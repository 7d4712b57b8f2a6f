"""Batched, streaming generation for Soprano: one scheduler thread steps every active stream.

Soprano is a Qwen3 causal LM whose last-layer hidden state at each audio token is one 64 ms
frame of speech; a Vocos-style decoder turns a run of those states into 32 kHz audio. This
module runs the LM and the decoder for every concurrent ``stream()`` call of the engine:

* **One scheduler thread** owns the model. Each step feeds the newest token of *all* active
  sentences through the LM at once (batch B, one token each), so the weights are read once per
  step instead of once per stream. New sentences are prefilled as they arrive and join the
  batch on the next step; a finished or cancelled one leaves it.
* **Slot KV cache.** Keys and values live in preallocated ``(slots, kv_heads, context,
  head_dim)`` tensors, one pair per layer; active sentences occupy slots ``0..B-1`` so a step
  attends to a plain view of the first B slots, with a mask for the different lengths. The
  transformers decoder layers run unchanged: they only call ``update()`` on the cache object.
* **Hidden states, not tokens.** The state kept for audio token *k* is the final-norm hidden
  state of the forward pass whose logits chose token *k* (exactly what the package's
  non-streaming ``infer`` keeps; its transformers streaming path keeps the next one, 64 ms
  late). The state that chooses ``[STOP]`` is dropped.
* **Incremental decoding.** The decoder's receptive field is finite, so the audio between the
  centres of tokens *j* and *j+1* (one 2048-sample "interval") is final as soon as token
  *j+4* exists (:data:`LOOKAHEAD`), given 3 tokens of left context (:data:`LEFT_CONTEXT`).
  Decoding a window of states around the new intervals therefore gives the same samples as
  decoding the whole sentence at the end. Windows of every stream due for audio are decoded in
  one batched decoder call per window length.

The scheduler syncs with the host once per step (to read the B new token ids), not once per
token per stream, and never asks the LM for all-layer hidden states.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from bridge.cancel import CancelToken

log = logging.getLogger("bridge.tts.soprano")

#: Audio samples per token (decoder upsamples ×4, ISTFT hop 512) at 32 kHz: 64 ms.
TOKEN_SAMPLES = 2048
#: Tokens after the right edge of an interval that must exist before it is final. The decoder
#: sees ±8 frames through its eight kernel-3 ConvNeXt blocks and the ISTFT window spans ±2
#: frames, 4 frames per token: interval j needs frame 4j+13, which lies past token j+3.
LOOKAHEAD = 4
#: Tokens of left context an interval needs for the same reason (frame 4j-9 lies past token j-3).
LEFT_CONTEXT = 3
#: Longest prompt (tokens) a sentence may have; the text splitter keeps sentences far shorter.
MAX_PROMPT_TOKENS = 512


@dataclass
class SamplingConfig:
    temperature: float = 0.0  # <= 0: greedy (the package uses 0.001 with sampling: the same)
    top_p: float = 0.95
    repetition_penalty: float = 1.2


@dataclass
class Chunk:
    """One piece of a stream's audio, with where it came from (tests, metrics)."""

    audio: np.ndarray  # float32, 32 kHz
    sentence: int  # index of the sentence within the stream's text
    tokens: int  # audio tokens generated for that sentence when the chunk was cut
    final: bool  # the sentence's last chunk


_END = object()


@dataclass(eq=False)
class Job:
    """One ``stream()`` call: its sentences, generated one after another in one slot.

    Either ``prompts`` and ``caps`` are given, or ``text`` and ``prepare`` (text → prompts,
    caps), which the scheduler thread calls on admission so that submitting never blocks the
    caller (the pipeline calls ``stream()`` on its event loop).
    """

    cancel: CancelToken
    prompts: list[list[int]] = field(default_factory=list)
    caps: list[int] = field(default_factory=list)  # max audio tokens per sentence
    text: str | None = None
    prepare: Callable[[str], tuple[list[list[int]], list[int]]] | None = None
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    chunk_tokens: int | None = None  # per-job override of the scheduler's chunk size (tests)
    cap_is_expected: bool = False  # the caller asked for a short cap (warm-up): no warning
    # Scheduler-thread state --------------------------------------------------------------
    sentence: int = 0
    slot: int = -1
    pos: int = 0  # tokens in the KV cache for this sentence
    n: int = 0  # audio states kept for this sentence
    emitted: int = 0  # intervals already sent for this sentence
    chunks: int = 0  # chunks already sent for this sentence
    next_token: int = -1  # sampled, not yet fed
    done: str | None = None  # "stop", "length" once the sentence ended
    steps_after_cancel: int = 0
    _closed: bool = False

    def close(self) -> None:
        """The consumer is gone (generator closed, cancelled): drop at the next step."""
        self._closed = True

    @property
    def cancelled(self) -> bool:
        return self._closed or self.cancel.cancelled


class _SlotCache:
    """The cache object transformers' attention layers call ``update()`` on.

    Decode mode: rows 0..B-1 each receive one new key/value at their own position, and the
    layer attends to the first ``length`` positions of those rows. Prefill mode: one slot
    receives a whole prompt and attends to exactly its positions (causal, no mask).
    """

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self.keys = keys
        self.values = values
        self._mode = "decode"
        self._slot = 0
        self._rows: torch.Tensor | None = None
        self._pos: torch.Tensor | None = None
        self._length = 0

    def prefill(self, slot: int, length: int) -> None:
        self._mode, self._slot, self._length = "prefill", slot, length

    def decode(self, rows: torch.Tensor, pos: torch.Tensor, length: int) -> None:
        self._mode, self._rows, self._pos, self._length = "decode", rows, pos, length

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        k_all, v_all = self.keys[layer_idx], self.values[layer_idx]
        n = self._length
        if self._mode == "prefill":
            s = self._slot
            k_all[s, :, :n] = key[0]
            v_all[s, :, :n] = value[0]
            return k_all[s : s + 1, :, :n], v_all[s : s + 1, :, :n]
        rows, pos = self._rows, self._pos
        k_all[rows, :, pos] = key[:, :, 0]
        v_all[rows, :, pos] = value[:, :, 0]
        b = rows.shape[0]
        return k_all[:b, :, :n], v_all[:b, :, :n]


class BatchScheduler:
    """Owns the LM and decoder; steps all active jobs together in a background thread."""

    def __init__(
        self,
        lm: Any,
        decoder: torch.nn.Module,
        *,
        device: torch.device,
        stop_id: int,
        max_new_tokens: int,
        max_batch: int = 8,
        chunk_tokens: int = 8,
        sampling: SamplingConfig | None = None,
    ) -> None:
        self.lm = lm
        self.decoder = decoder
        self.device = device
        self.stop_id = int(stop_id)
        self.max_new_tokens = int(max_new_tokens)
        self.max_batch = int(max_batch)
        self.chunk_tokens = max(1, int(chunk_tokens))
        self.sampling = sampling or SamplingConfig()

        cfg = lm.config
        self._dtype = next(lm.parameters()).dtype
        self._kv_heads = cfg.num_key_value_heads
        self._head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self._layers = cfg.num_hidden_layers
        self._hidden = cfg.hidden_size
        self._vocab = cfg.vocab_size
        self._context = MAX_PROMPT_TOKENS + self.max_new_tokens + 1
        self._capacity = 0
        self._keys: list[torch.Tensor] = []
        self._values: list[torch.Tensor] = []
        self._states = torch.zeros(0)
        self._seen = torch.zeros(0)
        self._cache = _SlotCache(self._keys, self._values)
        self._rows = torch.arange(self.max_batch, device=device)

        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._active: list[Job] = []
        self._closing = False
        # Statistics (scheduler thread writes, anyone reads).
        self.steps = 0
        self.step_seconds = 0.0
        self.decode_seconds = 0.0
        self.decode_calls = 0
        self.prefill_seconds = 0.0
        self.prefills = 0
        self.tokens = 0
        self.max_batch_seen = 0
        self._thread = threading.Thread(target=self._run, name="soprano-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public (any thread)
    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise RuntimeError("Soprano scheduler is closed")
            self._pending.append(job)
            self._cond.notify()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closing

    @property
    def active(self) -> int:
        return len(self._active)

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def stats(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "tokens": self.tokens,
            "mean_step_ms": round(1000 * self.step_seconds / self.steps, 3) if self.steps else None,
            "mean_decode_ms": (
                round(1000 * self.decode_seconds / self.decode_calls, 3) if self.decode_calls else None
            ),
            "mean_prefill_ms": round(1000 * self.prefill_seconds / self.prefills, 3) if self.prefills else None,
            "max_batch_seen": self.max_batch_seen,
            "active": len(self._active),
            "pending": len(self._pending),
        }

    # ------------------------------------------------------------------ scheduler thread
    def _run(self) -> None:
        with torch.inference_mode():
            while True:
                with self._cond:
                    while not self._closing and not self._pending and not self._active:
                        self._cond.wait()
                    if self._closing:
                        break
                try:
                    self._iteration()
                except Exception as exc:  # a model fault: fail the streams in flight, keep serving
                    log.exception("soprano: generation step failed")
                    self._fail_active(exc)
        for job in list(self._active) + list(self._pending):
            job.out.put(_END)
        self._active.clear()
        self._pending.clear()

    def _iteration(self) -> None:
        self._drop_cancelled()
        self._admit()
        stepping = [j for j in self._active if j.done is None]
        if stepping:
            self._step(stepping)
        self._emit()

    def _drop_cancelled(self) -> None:
        with self._cond:
            kept = deque(j for j in self._pending if not j.cancelled)
            for job in self._pending:
                if job.cancelled:
                    job.out.put(_END)
            self._pending = kept
        for job in sorted(self._active, key=lambda j: -j.slot):
            if job.cancelled:
                self._release(job)
                job.out.put(_END)

    def _admit(self) -> None:
        while len(self._active) < self.max_batch:
            with self._cond:
                if not self._pending:
                    return
                job = self._pending.popleft()
            if job.cancelled:
                job.out.put(_END)
                continue
            if job.text is not None and job.prepare is not None:
                try:
                    job.prompts, job.caps = job.prepare(job.text)
                except Exception as exc:
                    job.out.put(exc)
                    continue
                job.text = None
            job.caps = [min(cap, self.max_new_tokens) for cap in job.caps]
            if not job.prompts:
                job.out.put(_END)
                continue
            self._ensure_capacity(len(self._active) + 1)
            job.slot = len(self._active)
            self._active.append(job)
            try:
                self._prefill(job)
            except Exception as exc:
                log.exception("soprano: prefill failed")
                self._release(job)
                job.out.put(exc)

    # ------------------------------------------------------------------ memory
    def _ensure_capacity(self, slots: int) -> None:
        if slots <= self._capacity:
            return
        new = min(self.max_batch, max(slots, 2 * self._capacity, 1))
        shape = (new, self._kv_heads, self._context, self._head_dim)
        keys = [torch.zeros(shape, dtype=self._dtype, device=self.device) for _ in range(self._layers)]
        values = [torch.zeros(shape, dtype=self._dtype, device=self.device) for _ in range(self._layers)]
        states = torch.zeros((new, self.max_new_tokens + 1, self._hidden), dtype=torch.float32, device=self.device)
        seen = torch.zeros((new, self._vocab), dtype=torch.bool, device=self.device)
        old = self._capacity
        if old:
            for layer in range(self._layers):
                keys[layer][:old] = self._keys[layer]
                values[layer][:old] = self._values[layer]
            states[:old] = self._states
            seen[:old] = self._seen
        self._keys[:] = keys
        self._values[:] = values
        self._states, self._seen = states, seen
        self._capacity = new

    def _release(self, job: Job) -> None:
        """Free ``job``'s slot, moving the last active job into it so slots stay 0..B-1."""
        slot, last = job.slot, len(self._active) - 1
        if slot < 0:
            return
        if slot != last:
            moved = self._active[last]
            length = moved.pos
            for layer in range(self._layers):
                self._keys[layer][slot, :, :length] = self._keys[layer][last, :, :length]
                self._values[layer][slot, :, :length] = self._values[layer][last, :, :length]
            self._states[slot, : moved.n] = self._states[last, : moved.n]
            self._seen[slot] = self._seen[last]
            self._active[slot] = moved
            moved.slot = slot
        self._active.pop()
        job.slot = -1

    # ------------------------------------------------------------------ the LM
    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        model = self.lm.model
        x = model.embed_tokens(ids)
        rope = model.rotary_emb(x, positions)
        for layer in model.layers:
            x = layer(x, attention_mask=mask, past_key_values=self._cache, position_embeddings=rope)
        return model.norm(x)

    def _choose(self, logits: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """Next token per row, as the package's processors would pick it (penalty, temperature, top-p)."""
        s = self.sampling
        logits = logits.float()
        if s.repetition_penalty != 1.0:
            penalised = torch.where(logits > 0, logits / s.repetition_penalty, logits * s.repetition_penalty)
            logits = torch.where(seen, penalised, logits)
        if s.temperature <= 0:
            return logits.argmax(dim=-1)
        logits = logits / s.temperature
        if s.top_p < 1.0:
            ordered, order = logits.sort(dim=-1)
            cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1.0 - s.top_p)
            drop[:, -1] = False
            logits = logits.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
        return torch.multinomial(logits.softmax(dim=-1), 1)[:, 0]

    def _prefill(self, job: Job) -> None:
        prompt = job.prompts[job.sentence]
        if len(prompt) > MAX_PROMPT_TOKENS:
            raise ValueError(f"prompt of {len(prompt)} tokens exceeds {MAX_PROMPT_TOKENS}")
        started = time.perf_counter()
        slot = job.slot
        ids = torch.tensor([prompt], dtype=torch.long, device=self.device)
        self._seen[slot].zero_()
        self._seen[slot, ids[0]] = True
        self._cache.prefill(slot, len(prompt))
        positions = torch.arange(len(prompt), device=self.device)[None]
        hidden = self._forward(ids, positions, None)[:, -1]
        token = self._choose(self.lm.lm_head(hidden), self._seen[slot : slot + 1])
        job.pos, job.n, job.emitted, job.chunks, job.done = len(prompt), 0, 0, 0, None
        self._accept([job], hidden, token.tolist())
        self.prefills += 1
        self.prefill_seconds += time.perf_counter() - started

    def _step(self, jobs: list[Job]) -> None:
        started = time.perf_counter()
        b = len(jobs)
        rows = self._rows[:b]
        ids = torch.tensor([j.next_token for j in jobs], dtype=torch.long, device=self.device)
        pos_list = [j.pos for j in jobs]
        pos = torch.tensor(pos_list, dtype=torch.long, device=self.device)
        length = max(pos_list) + 1
        self._seen[rows, ids] = True
        mask = None
        if min(pos_list) != length - 1:  # ragged lengths: hide each row's unused tail
            visible = torch.arange(length, device=self.device)[None, :] <= pos[:, None]
            mask = torch.zeros((b, 1, 1, length), dtype=self._dtype, device=self.device)
            mask.masked_fill_(~visible[:, None, None, :], torch.finfo(self._dtype).min)
        self._cache.decode(rows, pos, length)
        hidden = self._forward(ids[:, None], pos[:, None], mask)[:, 0]
        tokens = self._choose(self.lm.lm_head(hidden), self._seen[:b]).tolist()
        for job in jobs:
            job.pos += 1
            if job.cancel.cancelled:
                job.steps_after_cancel += 1
        self._accept(jobs, hidden, tokens)
        self.steps += 1
        self.step_seconds += time.perf_counter() - started
        self.max_batch_seen = max(self.max_batch_seen, b)

    def _accept(self, jobs: list[Job], hidden: torch.Tensor, tokens: list[int]) -> None:
        """Keep each row's hidden state unless its new token is [STOP]; end capped sentences."""
        slots = torch.tensor([j.slot for j in jobs], dtype=torch.long, device=self.device)
        index = torch.tensor([j.n for j in jobs], dtype=torch.long, device=self.device)
        self._states[slots, index] = hidden.float()  # a [STOP] row's write lands past n: ignored
        for job, token in zip(jobs, tokens):
            if token == self.stop_id:
                job.done = "stop"
                continue
            job.n += 1
            job.next_token = token
            self.tokens += 1
            if job.n >= job.caps[job.sentence]:
                job.done = "length"
                log.log(
                    logging.DEBUG if job.cap_is_expected else logging.WARNING,
                    "soprano: sentence %d reached its cap of %d audio tokens and was cut",
                    job.sentence,
                    job.caps[job.sentence],
                )

    # ------------------------------------------------------------------ the decoder
    def _emit(self) -> None:
        """Decode what is due: a sentence's first interval as soon as it is final, then chunks
        of 2, 4, … up to ``chunk_tokens`` intervals (the listener's buffer grows as fast as the
        decoder's per-call cost shrinks), and everything left when the sentence ends."""
        work: list[tuple[Job, int, int, int]] = []  # job, first token, first interval, end interval
        for job in self._active:
            if job.done is not None:
                end = max(job.n - 1, job.emitted)  # every interval left, to the last token's centre
            else:
                ready = job.n - LOOKAHEAD  # intervals 0..ready-1 are final
                limit = job.chunk_tokens or self.chunk_tokens
                if ready - job.emitted < min(limit, 1 << job.chunks):
                    continue
                end = ready
            if end > job.emitted:
                work.append((job, max(0, job.emitted - LEFT_CONTEXT), job.emitted, end))
        if work:
            self._decode(work)
        for job in sorted((j for j in self._active if j.done is not None), key=lambda j: -j.slot):
            self._finish_sentence(job)

    def _decode(self, work: list[tuple[Job, int, int, int]]) -> None:
        started = time.perf_counter()
        groups: dict[int, list[tuple[Job, int, int, int]]] = {}
        for item in work:  # every window runs from its first token to the newest one
            job, first, _, _ = item
            groups.setdefault(job.n - first, []).append(item)
        for width, items in groups.items():
            windows = torch.stack([self._states[job.slot, first : first + width] for job, first, _, _ in items])
            audio = self.decoder(windows.transpose(1, 2))
            audio = audio.reshape(len(items), -1).float().cpu().numpy()
            for row, (job, first, a, b) in enumerate(items):
                piece = np.ascontiguousarray(audio[row, (a - first) * TOKEN_SAMPLES : (b - first) * TOKEN_SAMPLES])
                final = job.done is not None
                job.emitted = b
                job.chunks += 1
                job.out.put(Chunk(piece, job.sentence, job.n, final))
            self.decode_calls += 1
        self.decode_seconds += time.perf_counter() - started

    def _finish_sentence(self, job: Job) -> None:
        self._release(job)
        job.sentence += 1
        if job.sentence < len(job.prompts) and not job.cancelled:
            job.done, job.n, job.emitted, job.chunks, job.pos = None, 0, 0, 0, 0
            with self._cond:
                self._pending.appendleft(job)
        else:
            job.out.put(_END)

    def _fail_active(self, exc: BaseException) -> None:
        for job in list(self._active):
            job.slot = -1
            job.out.put(exc)
        self._active.clear()


def is_end(item: object) -> bool:
    return item is _END
