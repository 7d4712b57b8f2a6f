"""The flat names of settings: every setting of a :class:`Section` keeps one flat, documented
name (its alias), which is the environment variable, the TOML key, the constructor keyword and
the README's row. These map flat names to sections and back (see :mod:`bridge.config`, which
re-exports them).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource


def prefixed(prefix: str) -> Callable[[str], str]:
    """Alias generator of a section whose settings share a prefix: ``index_rate`` → ``rvc_index_rate``."""
    return lambda name: prefix + name


class Section(BaseModel):
    """One stage's settings. Each field's alias is its flat, documented name (see the module)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_by_name=True, validate_by_alias=True)


@functools.cache
def flat_fields(cls: type[BaseModel]) -> dict[str, tuple[str, str, FieldInfo]]:
    """Each setting's flat name → (section, field name, field), in the order of the sections."""
    table: dict[str, tuple[str, str, FieldInfo]] = {}
    for section, outer in cls.model_fields.items():
        inner_cls = outer.annotation
        assert isinstance(inner_cls, type) and issubclass(inner_cls, Section), section
        for name, info in inner_cls.model_fields.items():
            flat = info.alias or name
            assert flat not in table, f"two settings named {flat}"
            table[flat] = (section, name, info)
    return table


@functools.cache
def flat_model(cls: type[BaseSettings]) -> type[BaseSettings]:
    """A flat twin of ``cls``, one field a flat name, for the sources that read names (env, TOML).

    Only the sources see it: values are validated by the sections. The fields are the sections'
    own (same types, metadata and defaults), with the alias dropped so the name is the key.
    """
    fields: dict[str, Any] = {}
    for flat, (_, _, info) in flat_fields(cls).items():
        plain = copy.copy(info)
        plain.alias = plain.validation_alias = plain.serialization_alias = None
        plain.alias_priority = None
        fields[flat] = (info.annotation, plain)
    return create_model(f"Flat{cls.__name__}", __base__=BaseSettings, **fields)


def flatten_sections(cls: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"rvc": {"index_rate": 0.5}}`` (or an ``RVCSettings``) → ``{"rvc_index_rate": 0.5}``; flat names pass."""
    by_name = {(section, name): flat for flat, (section, name, _) in flat_fields(cls).items()}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in cls.model_fields and isinstance(value, Mapping | BaseModel):
            items = dict(value).items() if isinstance(value, BaseModel) else value.items()
            for name, inner in items:
                out[by_name.get((key, name), name)] = inner  # an alias is already flat
        else:
            out[key] = value
    return out


class FlatInitSource(PydanticBaseSettingsSource):
    """The constructor's arguments, sections written out as flat names, so that they merge with
    the other sources name by name (a section passed whole still wins over the environment)."""

    def __init__(self, settings_cls: type[BaseSettings], init: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._init = init

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return flatten_sections(self.settings_cls, self._init())


def documented_name(cls: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    """The flat name of the setting at a validation error's ``loc`` (``("rvc", "index_rate")`` →
    ``rvc_index_rate``), which is what users write; other locations joined with dots."""
    for flat, (section, name, info) in flat_fields(cls).items():
        if tuple(loc[:2]) in ((section, name), (section, info.alias)):
            return ".".join([flat, *map(str, loc[2:])])
    return ".".join(map(str, loc))


def nest_flat(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """``{"rvc_index_rate": 0.5, "server": {...}}`` → ``{"rvc": {"index_rate": 0.5}, "server": {...}}``.

    Flat names win over a section given whole (they come from the source of highest priority);
    unknown names are left for validation to refuse.
    """
    table = flat_fields(cls)
    nested: dict[str, Any] = {}
    for key, value in data.items():
        if key in table:
            section, name, _ = table[key]
            nested.setdefault(section, {})[name] = value
    if not nested:
        return data
    out = {key: value for key, value in data.items() if key not in table}
    for section, values in nested.items():
        given = out.get(section)
        if isinstance(given, BaseModel):
            given = dict(given)
        out[section] = {**(given or {}), **values}
    return out
