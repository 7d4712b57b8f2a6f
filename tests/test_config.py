"""Settings (bridge/config.py): sections by stage, every documented name (environment variable,
TOML key, constructor keyword) reaching its section's field, the README table, clear errors."""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from bridge.config import (
    ENV_PREFIX,
    AccessSettings,
    RVCSettings,
    Section,
    Settings,
    documented_name,
    flat_fields,
    load_settings,
    readme_with_settings,
)

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
    assert settings.server.port == 8765 and settings.server.host == "127.0.0.1" and settings.engines.tts == "piper"
    assert settings.segmenter.segment_max_chars == 200


def test_environment_overrides(clean_env) -> None:
    clean_env.setenv("VOICE_BRIDGE_PORT", "9001")
    clean_env.setenv("VOICE_BRIDGE_SKIP_CODE_BLOCKS", "false")
    settings = load_settings()
    assert settings.server.port == 9001 and settings.segmenter.skip_code_blocks is False


def test_toml_file_with_tables_and_flat_keys(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text('port = 9100\n[first_segment]\nmax_words = 5\n')
    settings = load_settings()
    assert settings.server.port == 9100 and settings.segmenter.first_segment_max_words == 5


def test_priority_cli_over_env_over_file(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text("port = 9100\nframe_ms = 40\nhost = '0.0.0.0'\n")
    clean_env.setenv("VOICE_BRIDGE_PORT", "9200")
    clean_env.setenv("VOICE_BRIDGE_FRAME_MS", "30")
    settings = load_settings(port=9300)
    assert (settings.server.port, settings.audio.frame_ms, settings.server.host) == (9300, 30, "0.0.0.0")


def test_explicit_config_path(clean_env, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text("max_sessions = 3\n")
    clean_env.setenv("VOICE_BRIDGE_CONFIG", str(path))
    assert load_settings().sessions.max_sessions == 3
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


# ----------------------------------------------------------------------------- sections
def test_each_stage_has_its_section_and_the_flat_names_are_the_aliases() -> None:
    settings = Settings(rvc_index_rate=0.5, segment_max_chars=300, default_voice="alice", normalize_text=False)
    assert isinstance(settings.rvc, RVCSettings) and settings.rvc.index_rate == 0.5
    assert settings.segmenter.segment_max_chars == 300 and settings.rvc.default_voice == "alice"
    assert settings.normalize.enabled is False
    assert RVCSettings(index_rate=0.1).index_rate == RVCSettings(rvc_index_rate=0.1).index_rate == 0.1
    with pytest.raises(ValidationError):
        RVCSettings(index_rate=2)  # the section validates on its own


def test_a_section_given_whole_or_by_name_merges_with_flat_names(clean_env) -> None:
    settings = Settings(rvc={"index_rate": 0.2}, rvc_protect=0.1)
    assert (settings.rvc.index_rate, settings.rvc.protect) == (0.2, 0.1)
    assert Settings(access=AccessSettings(metrics_auth=False)).access.metrics_auth is False
    with pytest.raises(ValidationError):
        Settings(rvc={"bogus": 1})


def test_the_constructor_beats_a_file_even_for_a_section_given_whole(clean_env, tmp_path: Path) -> None:
    (tmp_path / "voice-bridge.toml").write_text("[rvc]\nindex_rate = 0.5\nprotect = 0.2\n")
    settings = Settings(rvc={"index_rate": 0.1})
    assert (settings.rvc.index_rate, settings.rvc.protect) == (0.1, 0.2)


def test_unchecked_copies_take_values_outside_the_ranges() -> None:
    base = Settings()
    loose = base.unchecked(port=0, max_message_bytes=10, rvc_index_rate=3.0)
    assert (loose.server.port, loose.limits.max_message_bytes, loose.rvc.index_rate) == (0, 10, 3.0)
    assert base.limits.max_message_bytes == 65536  # the original is untouched
    with pytest.raises(TypeError, match="prot"):
        base.unchecked(prot=1)


# ------------------------------------------------------- every documented name still works
def _readme_rows() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- settings:begin -->", 1)[1].split("<!-- settings:end -->", 1)[0]
    return re.findall(r"^\| `(" + ENV_PREFIX + r"[A-Z0-9_]+)` \| ([^|]*) \|", block, re.M)


README_ROWS = _readme_rows()
FIELDS = flat_fields(Settings)


def test_the_readme_table_names_every_setting_once_in_section_order() -> None:
    assert [name for name, _ in README_ROWS] == [ENV_PREFIX + flat.upper() for flat in FIELDS]


def _kinds(annotation: Any) -> list[Any]:
    """The non-None members of an annotation (``int | None`` → ``[int]``)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _candidates(annotation: Any) -> list[Any]:
    kind = _kinds(annotation)[0]
    origin = typing.get_origin(kind)
    if origin is Literal:
        return list(typing.get_args(kind))
    if origin is list:
        return [["10.0.0.0/8", "192.168.0.0/16"]]
    if origin is dict:
        return [{"GIF": "jif"}]
    return {
        bool: [True, False],
        int: [7, 3, 1, 2, 10200, 128, 2048, 131072 * 2],
        float: [0.5, 0.3, 0.01, 0.05, 2.5, 12.0, 0.45],
        str: ["DEBUG", "alice"],
        Path: [Path("/tmp/vb-setting")],
    }[kind]


def _value_for(flat: str) -> Any:
    """A valid value for the setting that is not its default."""
    section, name, info = FIELDS[flat]
    section_cls = Settings.model_fields[section].annotation
    default = getattr(section_cls(), name)
    for value in _candidates(info.annotation):
        try:
            checked = getattr(section_cls.model_validate({name: value}), name)
        except ValidationError:
            continue
        if checked != default:
            return value
    raise AssertionError(f"no test value for {flat}")


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _field_of(settings: Settings, flat: str) -> Any:
    section, name, _ = FIELDS[flat]
    return _plain(getattr(getattr(settings, section), name))


def _expected(flat: str, value: Any) -> Any:
    section, name, _ = FIELDS[flat]
    section_cls = Settings.model_fields[section].annotation
    assert isinstance(section_cls, type) and issubclass(section_cls, BaseModel)
    return _plain(getattr(section_cls.model_validate({name: value}), name))


@pytest.mark.parametrize("variable", [name for name, _ in README_ROWS])
def test_every_documented_variable_and_key_sets_its_sections_field(clean_env, tmp_path: Path, variable: str) -> None:
    flat = variable.removeprefix(ENV_PREFIX).lower()
    assert flat in FIELDS
    value = _value_for(flat)
    expected = _expected(flat, value)
    assert _field_of(Settings(), flat) != expected
    # The environment variable.
    clean_env.setenv(variable, _env_text(value))
    assert _field_of(Settings(), flat) == expected, variable
    clean_env.delenv(variable)
    # The TOML key, flat, then (where the name has a prefix) as a table.
    config = tmp_path / "voice-bridge.toml"
    config.write_text(f"{flat} = {_toml_text(value)}\n")
    assert _field_of(Settings(), flat) == expected, config.read_text()
    if "_" in flat:
        table, key = flat.split("_", 1)
        config.write_text(f"[{table}]\n{key} = {_toml_text(value)}\n")
        assert _field_of(Settings(), flat) == expected, config.read_text()
    config.unlink()
    # The constructor keyword (the CLI's overrides).
    assert _field_of(Settings(**{flat: value}), flat) == expected


def test_sections_are_plain_models_built_without_the_environment(clean_env) -> None:
    clean_env.setenv("VOICE_BRIDGE_RVC_INDEX_RATE", "0.1")
    assert RVCSettings().index_rate == 0.75  # a section alone reads nothing: Settings loads
    assert Settings().rvc.index_rate == 0.1
    assert all(issubclass(Settings.model_fields[name].annotation, Section) for name in Settings.model_fields)  # type: ignore[arg-type]


def test_errors_name_the_documented_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(rvc_index_rate=5, segment_max_chars=1, port="eighty")
    names = sorted(documented_name(Settings, error["loc"]) for error in caught.value.errors())
    assert names == ["port", "rvc_index_rate", "segment_max_chars"]
    assert documented_name(Settings, ("elsewhere", 0)) == "elsewhere.0"
