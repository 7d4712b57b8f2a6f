"""Where settings come from besides the constructor and the environment: the TOML config file
(``VOICE_BRIDGE_CONFIG`` or ``./voice-bridge.toml``), its tables flattened into flat names.

Shared by :mod:`bridge.config` (which re-exports these names) and the Discord bot's settings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

CONFIG_FILE_ENV = "VOICE_BRIDGE_CONFIG"
DEFAULT_CONFIG_FILE = "voice-bridge.toml"


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
    it, the whole file minus :data:`FOREIGN_SECTIONS`. Keys are checked against ``fields``
    (default: the class's own fields), the settings' flat names.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        path: Path | None,
        section: str | None = None,
        fields: Mapping[str, FieldInfo] | None = None,
    ) -> None:
        super().__init__(settings_cls)
        fields = settings_cls.model_fields if fields is None else fields
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
                name for name, info in fields.items() if get_origin(info.annotation) is dict
            )
            flat = _flatten(raw, keep=tables)
            unknown = sorted(set(flat) - set(fields))
            if unknown:
                where = f"[{section}] of {path}" if section else str(path)
                raise ValueError(f"unknown setting(s) in {where}: {', '.join(unknown)}")
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
