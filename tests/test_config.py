"""Settings: one class, environment variables, a TOML file with tables, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.config import Settings, load_settings, readme_with_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("VOICE_BRIDGE_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_defaults(clean_env) -> None:
    settings = load_settings()
    assert settings.port == 8765 and settings.host == "127.0.0.1" and settings.tts == "piper"
    assert settings.segment_max_chars == 200


def test_environment_overrides(clean_env) -> None:
    clean_env.setenv("VOICE_BRIDGE_PORT", "9001")
    clean_env.setenv("VOICE_BRIDGE_SKIP_CODE_BLOCKS", "false")
    settings = load_settings()
    assert settings.port == 9001 and settings.skip_code_blocks is False


def test_toml_file_with_tables_and_flat_keys(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text('port = 9100\n[first_segment]\nmax_words = 5\n')
    settings = load_settings()
    assert settings.port == 9100 and settings.first_segment_max_words == 5


def test_priority_cli_over_env_over_file(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text("port = 9100\nframe_ms = 40\nhost = '0.0.0.0'\n")
    clean_env.setenv("VOICE_BRIDGE_PORT", "9200")
    clean_env.setenv("VOICE_BRIDGE_FRAME_MS", "30")
    settings = load_settings(port=9300)
    assert (settings.port, settings.frame_ms, settings.host) == (9300, 30, "0.0.0.0")


def test_explicit_config_path(clean_env, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("max_sessions = 3\n")
    clean_env.setenv("VOICE_BRIDGE_CONFIG", str(path))
    assert load_settings().max_sessions == 3
    clean_env.setenv("VOICE_BRIDGE_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        load_settings()


def test_unknown_key_in_file_is_an_error(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text("prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting.*prot"):
        load_settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [("port", 70000), ("frame_ms", 0), ("tts", "espeak"), ("log_level", "LOUD"), ("synthesis_workers", -1)],
)
def test_invalid_values_are_refused(clean_env, field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_with_settings(readme) == readme, "run: python -m bridge.config --update-readme README.md"
