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
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "VOICE_BRIDGE_"
CONFIG_FILE_ENV = "VOICE_BRIDGE_CONFIG"
DEFAULT_CONFIG_FILE = "voice-bridge.toml"

#: The output rate of the bridge: every stream and WAV is 48 kHz mono.
OUTPUT_SAMPLE_RATE = 48_000


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten TOML tables one or more levels deep: ``{"rvc": {"index_rate": 1}}`` → ``rvc_index_rate``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}_{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        else:
            flat[name] = value
    return flat


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML config file named by ``VOICE_BRIDGE_CONFIG`` (or ``./voice-bridge.toml``)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._values: dict[str, Any] = {}
        if path is not None and path.is_file():
            with path.open("rb") as handle:
                raw = tomllib.load(handle)
            flat = _flatten(raw)
            unknown = sorted(set(flat) - set(settings_cls.model_fields))
            if unknown:
                raise ValueError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
            self._values = flat

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


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
        0, ge=0, description="onnxruntime intra-op threads per synthesis (0: library default)."
    )
    piper_streaming: bool = Field(
        True, description="Decode Piper audio in chunks (first audio sooner) when the graph allows."
    )
    piper_noise_scale: float | None = Field(None, ge=0, description="Override the voice's noise scale.")
    piper_length_scale: float | None = Field(None, gt=0, description="Override the voice's speaking rate (>1 slower).")
    piper_noise_w: float | None = Field(None, ge=0, description="Override the voice's duration noise.")
    synthesis_workers: int = Field(
        2, ge=1, description="Threads running model work (TTS, voice conversion) for all sessions."
    )

    # --- segmenter / text ---------------------------------------------------------------
    segment_max_chars: int = Field(200, ge=20, description="Hard cap on one segment's length.")
    first_segment_min_words: int = Field(
        2, ge=1, description="Fast path: the first segment may end at a pause mark after this many words."
    )
    first_segment_max_words: int = Field(
        3, ge=1, description="Fast path: cut the first segment after this many words when no boundary came."
    )
    pause_min_chars: int = Field(
        30, ge=0, description="Later segments end at a pause mark (, ; :) only past this many characters."
    )
    skip_code_blocks: bool = Field(True, description="Do not speak fenced code blocks.")
    idle_flush_ms: int = Field(
        0, ge=0, description="Speak buffered text after this long without tokens (0: only on flush)."
    )

    # --- audio --------------------------------------------------------------------------
    frame_ms: int = Field(20, ge=5, le=1000, description="Audio per binary WebSocket frame.")
    output_format: Literal["f32le", "s16le"] = Field("f32le", description="Default PCM format.")
    sentence_pause_ms: int = Field(250, ge=0, description="Silence kept after a sentence end.")
    clause_pause_ms: int = Field(120, ge=0, description="Silence kept after a pause mark.")
    word_pause_ms: int = Field(30, ge=0, description="Silence kept where a segment was cut between words.")
    fade_ms: float = Field(4.0, ge=0, description="Raised-cosine fade where silence is trimmed.")

    # --- sessions / limits --------------------------------------------------------------
    max_sessions: int = Field(32, ge=1, description="Concurrent WebSocket sessions.")
    output_queue_seconds: float = Field(
        4.0, gt=0, description="Audio a session may hold unsent before its synthesis pauses."
    )

    # --- voice conversion parts: content features, pitch (bridge/vc/content.py, pitch.py) --
    rvc_content_model: Path | None = Field(
        None,
        description="HuBERT/ContentVec weights: fairseq hubert_base.pt or a Hugging Face directory "
        "(default: <models_dir>/hubert_base.pt, else <models_dir>/hubert_base/).",
    )
    rvc_pitch_method: Literal["rmvpe", "parselmouth"] = Field(
        "rmvpe",
        description="Pitch estimator: 'rmvpe' (<models_dir>/rmvpe.pt) or 'parselmouth' (Praat, no weights).",
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
        description="auto: fp16 on CUDA, fp32 on the CPU. bf16: CPU autocast (faster on CPUs with "
        "AVX512-BF16/AMX, slightly lower fidelity).",
    )
    rvc_threads: int = Field(0, ge=0, description="torch intra-op threads on the CPU (0: torch's default).")
    rvc_device_concurrency: int = Field(
        1, ge=1, description="Conversion blocks run at once per device (1 is fastest on a CPU)."
    )
    rvc_voice_cache: int = Field(4, ge=1, description="Voices kept loaded per device (least recently used go).")
    rvc_fold_weight_norm: bool = Field(True, description="Fold weight norm into plain weights after loading (faster).")
    rvc_block_seconds: float = Field(
        0.5, ge=0.02, le=10, description="Streaming block: audio converted per model call (rounded to 20 ms)."
    )
    rvc_first_block_seconds: float | None = Field(
        0.24,
        ge=0.02,
        le=10,
        description="First block of an utterance (sooner first audio); later blocks double up to "
        "rvc_block_seconds. Empty: all blocks rvc_block_seconds.",
    )
    rvc_crossfade_seconds: float = Field(
        0.04, ge=0, le=0.5, description="Crossfade between consecutive blocks (SOLA, sin²), rounded to 10 ms."
    )
    rvc_context_seconds: float = Field(
        1.0, ge=0, le=10, description="Left context converted with each block (more: better, slower; RVC: 2.5)."
    )
    rvc_lookahead_seconds: float = Field(
        0.04, ge=0, le=1, description="Right context each block waits for (adds latency, smooths joins)."
    )

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
        return (init_settings, env_settings, _TomlSource(settings_cls, config_file_path()))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with explicit overrides (None = unset)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
