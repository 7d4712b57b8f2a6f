"""All settings of voice-bridge, in one place.

Every setting is a field of :class:`Settings`. Values come, highest priority first, from
constructor arguments (the CLI), ``VOICE_BRIDGE_<FIELD>`` environment variables, a TOML file
(``VOICE_BRIDGE_CONFIG`` or ``voice-bridge.toml`` in the working directory), then the defaults
below. In the TOML file a field may be written flat (``rvc_index_rate = 0.5``) or inside a
table named after its prefix (``[rvc]`` then ``index_rate = 0.5``): tables are flattened by
joining names with ``_``.

Fields are flat (not nested models) so that each one is a plain, documented environment
variable. Sections below group them by the stage they configure.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bridge.audio.formats import PcmFormat

ENV_PREFIX = "VOICE_BRIDGE_"
CONFIG_FILE_ENV = "VOICE_BRIDGE_CONFIG"
DEFAULT_CONFIG_FILE = "voice-bridge.toml"

#: The output rate of the bridge: every stream and WAV is 48 kHz mono.
OUTPUT_SAMPLE_RATE = 48_000


def _flatten(table: dict[str, Any], prefix: str = "", keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Flatten TOML tables one or more levels deep: ``{"rvc": {"index_rate": 1}}`` → ``rvc_index_rate``.

    A table whose flattened name is in ``keep`` (a setting that is itself a table, such as
    ``[normalize.pronunciations]``) is kept whole as that setting's value.
    """
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(value, dict) and name not in keep:
            flat.update(_flatten(value, name, keep))
        else:
            flat[name] = value
    return flat


#: Top-level tables of the config file that belong to other programs sharing it (the
#: Discord bot reads ``[discord]``); the server skips them instead of calling them unknown.
FOREIGN_SECTIONS = ("discord",)


class TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML config file named by ``VOICE_BRIDGE_CONFIG`` (or ``./voice-bridge.toml``).

    With ``section`` only that top-level table is read (``[discord]`` for the bot); without
    it, the whole file minus :data:`FOREIGN_SECTIONS`.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None, section: str | None = None) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path is not None and path.is_file():
            with path.open("rb") as handle:
                raw = tomllib.load(handle)
            if section is None:
                raw = {k: v for k, v in raw.items() if k not in FOREIGN_SECTIONS}
            else:
                raw = raw.get(section, {})
                if not isinstance(raw, dict):
                    raise ValueError(f"[{section}] in {path} must be a table")
            tables = frozenset(
                name for name, info in settings_cls.model_fields.items() if get_origin(info.annotation) is dict
            )
            flat = _flatten(raw, keep=tables)
            unknown = sorted(set(flat) - set(settings_cls.model_fields))
            if unknown:
                where = f"[{section}] of {path}" if section else str(path)
                raise ValueError(f"unknown setting(s) in {where}: {', '.join(unknown)}")
            self._values = flat

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


_TomlSource = TomlSource  # the name it had before the bot shared it


def _split_csv(value: Any) -> Any:
    """A list setting written as one string (the environment): ``"a, b"`` → ``["a", "b"]``."""
    if value is None:  # an empty variable (env_parse_none_str)
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def config_file_path() -> Path | None:
    """The TOML file to read, if any: ``$VOICE_BRIDGE_CONFIG`` or ``./voice-bridge.toml``."""
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_FILE_ENV}={explicit}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


class Settings(BaseSettings):
    """Every knob of the bridge. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        # Lists from the environment may be written comma-separated (see _split_csv).
        env_parse_none_str="",
    )

    # --- server -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8765, ge=0, le=65535, description="TCP port (0 picks a free one).")
    log_level: str = Field("INFO", description="stdlib logging level.")
    log_json: bool = Field(False, description="Log one JSON object per line.")

    # --- engines ------------------------------------------------------------------------
    tts: Literal["piper", "soprano"] = Field("piper", description="TTS engine to load.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' or 'cuda:N'.")
    models_dir: Path = Field(Path("models"), description="Where weights live.")
    piper_model: Path | None = Field(
        None, description="Piper .onnx voice; default: the embedded joe-medium voice."
    )
    piper_threads: int = Field(
        0,
        ge=0,
        description="onnxruntime intra-op threads per synthesis call. 0: one per call, so each "
        "model worker is one core's work, and every core for a call that runs while no other "
        "model work waits.",
    )
    piper_streaming: bool = Field(
        True, description="Decode Piper audio in chunks (first audio sooner) when the graph allows."
    )
    piper_noise_scale: float | None = Field(None, ge=0, description="Override the voice's noise scale.")
    piper_length_scale: float | None = Field(None, gt=0, description="Override the voice's speaking rate (>1 slower).")
    piper_noise_w: float | None = Field(None, ge=0, description="Override the voice's duration noise.")
    synthesis_workers: int = Field(
        0,
        ge=0,
        description="Threads running model work (TTS, voice conversion) for all sessions, most "
        "urgent first (0: one per core the process may use).",
    )
    first_audio_target_ms: int = Field(
        100,
        ge=0,
        description="Scheduling: an utterance's first audio is due this long after its first "
        "segment is cut; work for listeners with more audio left waits behind it.",
    )
    boundary_grace_ms: int = Field(
        150,
        ge=0,
        description="Scheduling: a segment's first work may be this much later than its "
        "listener running dry, so that under overload gaps fall at sentence and clause ends.",
    )

    # --- soprano (tts = "soprano") ------------------------------------------------------
    soprano_model_dir: Path | None = Field(
        None,
        description="Soprano model folder (config.json, model.safetensors, tokenizer.json, "
        "tokenizer_config.json, decoder.pth); default: the soprano folder in models_dir.",
    )
    soprano_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="LM precision; 'auto': bfloat16 on a GPU that computes it natively (NVIDIA compute "
        "capability 8+, AMD CDNA or RDNA 3+), else float32 (CPU, RX 6000, older NVIDIA). The decoder runs in float32."
    )
    soprano_max_new_tokens: int = Field(
        512, ge=16, le=4096, description="Hard cap on audio tokens per sentence (64 ms each)."
    )
    soprano_tokens_per_char: float = Field(
        3.0,
        gt=0,
        description="Also cap a sentence at 32 + this many tokens per character of its text "
        "(speech needs about 1): a runaway sentence is cut early.",
    )
    soprano_temperature: float = Field(
        0.0, ge=0, description="Sampling temperature; 0 takes the likeliest token (the package's default)."
    )
    soprano_top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass (with temperature > 0).")
    soprano_repetition_penalty: float = Field(
        1.2, ge=1.0, description="Penalty on tokens already in the prompt or the audio so far."
    )
    soprano_max_batch: int = Field(
        8, ge=1, le=256, description="Sentences generated together in one batched step; more wait their turn."
    )
    soprano_chunk_tokens: int = Field(
        8,
        ge=1,
        le=256,
        description="Largest audio chunk, in tokens of 64 ms: a sentence's first chunk is 1 token "
        "(out after 5 are generated), then 2, 4, … up to this (fewer decoder calls).",
    )
    soprano_threads: int = Field(
        0, ge=0, description="torch intra-op threads, process-wide (0: library default)."
    )

    # --- segmenter / text ---------------------------------------------------------------
    segment_max_chars: int = Field(200, ge=20, description="Hard cap on one segment's length.")
    first_segment_min_words: int = Field(
        2, ge=1, description="Fast path: the first segment may end at a pause mark after this many words."
    )
    first_segment_max_words: int = Field(
        2, ge=1, description="Fast path: cut the first segment after this many words when no boundary came (tuned: benchmarks/results/*-fast-path-tuning.md)."
    )
    pause_min_chars: int = Field(
        30, ge=0, description="Later segments end at a pause mark (, ; :) only past this many characters."
    )
    second_segment_min_words: int = Field(
        5, ge=0, description="The segment after the first fragment may end before a clause opener "
        "(but, because, which, when, with …) once it has this many words (0: off): its audio is due "
        "when the fragment's runs out.",
    )
    skip_code_blocks: bool = Field(True, description="Do not speak fenced code blocks.")
    idle_flush_ms: int = Field(
        0, ge=0, description="Speak buffered text after this long without tokens (0: only on flush)."
    )

    # --- text normalization (bridge/normalize) --------------------------------------------
    normalize_text: bool = Field(
        True,
        description="Rewrite money, dates, times, numbers, units, abbreviations and symbols into the words a "
        "person would say before the engine reads a segment (segment events keep the original text).",
    )
    normalize_date_order: Literal["mdy", "dmy"] = Field(
        "mdy", description="How to read numeric dates such as 03/12/2026: mdy (March twelfth) or dmy (the third of December)."
    )
    normalize_foreign_text: Literal["transliterate", "skip"] = Field(
        "transliterate",
        description="Text in a script the voice cannot read (Japanese, Chinese, Korean, Cyrillic, Arabic … in an "
        "English voice): romanize it, or leave it out; segment events list what was done.",
    )
    normalize_pronunciations: dict[str, str] = Field(
        default_factory=dict,
        description="Your pronunciation dictionary: word or phrase → what to say instead, matched as a whole "
        "word ignoring case, before any other rule (TOML table [normalize.pronunciations]; env: JSON).",
    )

    # --- audio --------------------------------------------------------------------------
    frame_ms: int = Field(20, ge=5, le=1000, description="Audio per binary WebSocket frame.")
    output_format: PcmFormat = Field("f32le", description="Default PCM format.")
    sentence_pause_ms: int = Field(250, ge=0, description="Silence kept after a sentence end.")
    clause_pause_ms: int = Field(120, ge=0, description="Silence kept after a pause mark.")
    word_pause_ms: int = Field(30, ge=0, description="Silence kept where a segment was cut between words.")
    fade_ms: float = Field(4.0, ge=0, description="Raised-cosine fade where silence is trimmed.")

    opus_bitrate: int = Field(
        64000, ge=6000, le=510000, description="Opus bitrate (bit/s) for WebSocket `format: opus` and OpenAI `response_format: opus`."
    )

    # --- other protocols: OpenAI speech API, Wyoming (bridge/openai_speech.py, wyoming_server.py)
    openai_models: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "voice-bridge"],
        description="Model names POST /v1/audio/speech accepts (comma-separated; all speak with this server's engines).",
    )
    openai_max_input_chars: int = Field(
        4096, ge=1, description="Longest `input` of POST /v1/audio/speech (OpenAI's limit: 4096)."
    )
    openai_voice_map: dict[str, str] = Field(
        default_factory=dict,
        description="OpenAI voice names (alloy, nova, …) → this server's voices, as JSON; unmapped OpenAI names "
        "speak with the default voice.",
    )
    wyoming_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Wyoming (Home Assistant) TTS on this TCP port, e.g. 10200 (empty: off)."
    )

    # --- sessions / limits --------------------------------------------------------------
    max_sessions: int = Field(
        32, ge=1, description="Hard cap on concurrent sessions (WebSocket and /api/speak), whatever the measured capacity."
    )
    output_queue_seconds: float = Field(
        4.0, gt=0, description="Audio a session may hold unsent before its synthesis pauses."
    )

    # --- measured capacity (bridge/capacity.py) ---------------------------------------------
    capacity_admission: bool = Field(
        True,
        description="Refuse a new session (WebSocket 1013, /api/speak 503, /ready 503) when one more listener "
        "would push the demand past the usable cores; false: only max_sessions limits.",
    )
    capacity_cores: float = Field(
        0.0, ge=0, description="Cores the capacity counts (0: the CPUs this process may use, capped by a cgroup CPU quota)."
    )
    capacity_margin: float = Field(
        0.15, ge=0, lt=1, description="Share of the cores kept free: usable cores = cores × (1 − margin)."
    )
    capacity_window_seconds: float = Field(
        10.0, gt=0, description="Wall time over which the load (model CPU-seconds per second) is measured."
    )
    capacity_prior_cost_per_audio_second: float = Field(
        0.25,
        gt=0,
        description="CPU-seconds per second of audio assumed for a voice not yet measured (about 2× embedded "
        "Piper's cost on one core; raise it when the default voice is RVC on the CPU).",
    )
    capacity_warmup_audio_seconds: float = Field(
        2.0, ge=0, description="Audio a voice must have made before its measured cost replaces the prior."
    )
    capacity_cost_half_life_audio_seconds: float = Field(
        60.0, gt=0, description="A cost measurement weighs half once the voice has made this much newer audio."
    )

    # --- access (bridge/auth.py) ----------------------------------------------------------
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="API keys, comma-separated; when set, /ws/stream and /api/speak need one "
        "(`Authorization: Bearer KEY` or `?token=KEY`).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed in (comma-separated, `*` for any); empty: same-origin "
        "pages and clients that send no Origin.",
    )
    metrics_auth: bool = Field(True, description="/metrics needs an API key too, when keys are set.")

    # --- abuse limits (bridge/limits.py) ----------------------------------------------------
    max_message_bytes: int = Field(
        65536, ge=1024, description="Largest WebSocket message or HTTP body (beyond: close 1009 / HTTP 413)."
    )
    max_token_chars: int = Field(
        4096, ge=1, description="Longest token in one message (longer: error frame, token dropped)."
    )
    max_buffered_chars: int = Field(
        16384, ge=256, description="Text a session may hold waiting for synthesis (beyond: close 1008)."
    )
    max_message_rate: float = Field(200.0, gt=0, description="Messages per second a session may send, sustained.")
    message_burst: int = Field(
        1000, ge=1, description="Messages a session may send at once above that rate (beyond: close 1008)."
    )
    max_utterance_seconds: float = Field(
        300.0, gt=0, description="Audio one utterance may make; the rest is dropped with an error frame."
    )
    speak_max_seconds: float = Field(
        60.0, gt=0, description="Longest audio one /api/speak request returns (the WAV is built in memory)."
    )
    max_session_seconds: float = Field(3600.0, ge=0, description="Longest session, then close 1008 (0: no limit).")
    idle_timeout_seconds: float = Field(
        300.0, ge=0, description="Close a session (1000) silent this long both ways (0: never)."
    )
    max_connections_per_ip: int = Field(
        8,
        ge=0,
        description="Sessions (WebSocket and /api/speak) open at once from one address (0: no limit; "
        "loopback is not limited).",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-For names the client "
        "for the per-address limit and logs.",
    )
    send_stall_seconds: float = Field(
        30.0, gt=0, description="Close a client (1008) that has read nothing this long while audio waits for it."
    )
    socket_send_buffer_bytes: int = Field(
        131072, ge=0, description="Kernel send buffer per connection (SO_SNDBUF; 0: the OS default, up to megabytes)."
    )
    heartbeat_seconds: float = Field(
        20.0, ge=0, description="WebSocket ping interval; no pong within half of it drops the client (0: off)."
    )
    shutdown_timeout_seconds: float = Field(
        10.0, gt=0, description="On SIGTERM, time for in-flight work to finish before sessions close with 1001."
    )

    # --- voice conversion parts: content features, pitch (bridge/vc/content.py, pitch.py) --
    rvc_content_model: Path | None = Field(
        None,
        description="HuBERT/ContentVec weights: fairseq hubert_base.pt or a Hugging Face directory "
        "(default: <models_dir>/hubert_base.pt, else <models_dir>/hubert_base/).",
    )
    rvc_pitch_method: Literal["auto", "rmvpe", "parselmouth"] = Field(
        "auto",
        description="Pitch estimator: 'rmvpe' (<models_dir>/rmvpe.pt) or 'parselmouth' (Praat, no weights, "
        "~0.2 RTF cheaper on a CPU). auto: rmvpe on CUDA, parselmouth on the CPU.",
    )
    rvc_pitch_fallback: bool = Field(
        True,
        description="When rmvpe.pt is missing, warn and use parselmouth instead of failing.",
    )

    # --- voice conversion (RVC) ---------------------------------------------------------
    default_voice: str | None = Field(None, description="RVC voice for sessions that name none.")
    rvc_voices_dir: Path | None = Field(
        None, description="Voice folders, one per voice (<name>/*.pth + optional *.index); default <models_dir>/voices."
    )
    rvc_index_rate: float = Field(
        0.75, ge=0, le=1, description="Feature retrieval strength (0: ignore the voice's .index)."
    )
    rvc_protect: float = Field(
        0.33, ge=0, le=0.5, description="Keep this much of the raw features on voiceless frames (0.5: off)."
    )
    rvc_rms_mix_rate: float = Field(
        0.25, ge=0, le=1, description="Output loudness: 0 follows the input's envelope, 1 keeps the model's."
    )
    rvc_require_index: bool = Field(False, description="Refuse voices that have no .index file.")
    rvc_speaker_id: int = Field(0, ge=0, description="Speaker of multi-speaker voices.")
    rvc_noise_scale: float = Field(
        0.66666, ge=0, description="Prior noise of the synthesizer (RVC: 0.66666; 0: deterministic)."
    )
    rvc_precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto",
        description="auto: fp16 on CUDA; on the CPU bf16 autocast where the CPU has AVX512-BF16 or "
        "AMX (about 2x faster, slightly lower fidelity), else fp32.",
    )
    rvc_threads: int = Field(0, ge=0, description="torch intra-op threads on the CPU (0: torch's default).")
    rvc_device_concurrency: int = Field(
        1, ge=1, description="Conversion blocks run at once per device (1 is fastest on a CPU)."
    )
    rvc_voice_cache: int = Field(4, ge=1, description="Voices kept loaded per device (least recently used go).")
    rvc_fold_weight_norm: bool = Field(True, description="Fold weight norm into plain weights after loading (faster).")
    rvc_block_seconds: float | None = Field(
        None,
        ge=0.02,
        le=10,
        description="Streaming block: audio converted per model call (rounded to 20 ms). Empty: 0.5 on "
        "CUDA, 2.0 on the CPU (larger blocks amortise the context; real time on 2 cores).",
    )
    rvc_first_block_seconds: float | None = Field(
        None,
        ge=0,
        le=10,
        description="First block of an utterance (sooner first audio); later blocks grow to "
        "rvc_block_seconds. Empty: 0.24 on CUDA, 0.6 on the CPU. 0: every block rvc_block_seconds.",
    )
    rvc_block_step_seconds: float = Field(
        0.2,
        ge=0.02,
        le=10,
        description="Blocks come in multiples of this (besides the first and the full block): each new "
        "size costs a one-off kernel set-up on its first call (0.5-1.5 s on a CPU in bf16), so few sizes "
        "keep that out of the stream. 0.02: any size.",
    )
    rvc_warm_block_sizes: Literal["auto", "all", "edges"] = Field(
        "auto",
        description="Block sizes run once at start-up: edges (the first and the full block), all (every "
        "size the stream uses: no set-up cost mid-stream, a longer start-up), auto: all where kernels "
        "are set up per size (bf16 on the CPU), else edges.",
    )
    rvc_paced_blocks: bool = Field(
        True,
        description="Size each block after the first from the audio the listener still has and the "
        "measured conversion speed (no gaps while blocks grow); off: double each time.",
    )
    rvc_crossfade_seconds: float = Field(
        0.04, ge=0, le=0.5, description="Crossfade between consecutive blocks (SOLA, sin²), rounded to 10 ms."
    )
    rvc_context_seconds: float | None = Field(
        None,
        ge=0,
        le=10,
        description="Left context converted with each block (more: better, slower; RVC: 2.5). Empty: 1.0 on "
        "CUDA, 0.5 on the CPU.",
    )
    rvc_lookahead_seconds: float = Field(
        0.04, ge=0, le=1, description="Right context each block waits for (adds latency, smooths joins)."
    )
    rvc_start_context_seconds: float | None = Field(
        0.1,
        ge=0,
        le=10,
        description="Silence before an utterance converted as the first blocks' left context (less: a "
        "cheaper first block, sooner first audio). Empty: all of rvc_context_seconds, as RVC's realtime GUI.",
    )

    @field_validator("api_keys", "allowed_origins", "trusted_proxies", "openai_models", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError: not an address or network
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlSource(settings_cls, config_file_path()))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with explicit overrides (None = unset)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def settings_table(cls: type[BaseSettings], prefix: str, *, shown: dict[str, str] | None = None) -> str:
    """A Markdown table of a settings class: variable, default, meaning (from the descriptions).

    ``shown`` replaces the default column for fields whose default is too long to print.
    """
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in cls.model_fields.items():
        default = info.default
        if info.default_factory is not None:
            default = info.default_factory()  # type: ignore[call-arg]
        if shown and name in shown:
            cell = shown[name]
        elif default is None or default == [] or default == {}:
            cell = "—"
        else:
            cell = "`" + (", ".join(map(str, default)) if isinstance(default, list) else str(default)) + "`"
        rows.append(f"| `{prefix}{name.upper()}` | {cell} | {info.description or ''} |")
    return "\n".join(rows)


def replace_block(text: str, begin: str, end: str, block: str) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` markers replaced by ``block``."""
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def table_cli(argv: list[str], table: Callable[[], str], update: Callable[[str], str]) -> None:
    """``python -m <module> [--update-readme FILE]``: print the table, or rewrite FILE's block."""
    if len(argv) == 2 and argv[0] == "--update-readme":
        target = Path(argv[1])
        target.write_text(update(target.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(table() + "\n")


def settings_markdown() -> str:
    """The README's configuration table, generated from the fields above (a test keeps them equal)."""
    return settings_table(Settings, ENV_PREFIX)


README_BEGIN = "<!-- settings:begin -->"
README_END = "<!-- settings:end -->"


def readme_with_settings(readme: str) -> str:
    """``readme`` with the text between the settings markers replaced by the current table."""
    return replace_block(readme, README_BEGIN, README_END, settings_markdown())


if __name__ == "__main__":  # python -m bridge.config [--update-readme README.md]
    table_cli(sys.argv[1:], settings_markdown, readme_with_settings)
