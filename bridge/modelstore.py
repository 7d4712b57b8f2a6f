"""Model weights: the manifest (``models/manifest.toml``), downloads, and an inventory.

Manifest format (TOML)::

    version = 1

    [groups.<group>]                 # a set of files pulled together
    description = "…"
    hf_repo = "owner/name"           # optional: files are hub paths in this repo …
    revision = "main"                #   … fetched from https://huggingface.co/<repo>/resolve/<revision>/<path>
    dest_dir = ""                    # where the group's files go, relative to the models dir
    default = true                   # pulled by a bare `voice-bridge models pull`
    license = "MIT"

    [[groups.<group>.files]]
    path = "rmvpe.pt"                # hub path; also the local path under dest_dir …
    dest = "rmvpe.pt"                #   … unless dest overrides it (relative, no "..")
    url = "https://…"                # required when the group has no hf_repo
    size = 181184272                 # bytes
    sha256 = "6d62…"                 # 64 hex digits
    # or, when the hash is not known yet, explicitly:
    unverified = true                # pull then prints the computed sha256 (size optional)

A file is named by its local path relative to the models dir (``hubert_base.pt``,
``soprano/config.json``); ``pull`` accepts such names, their stem when unique (``rmvpe``) and
group names.

Downloads (:func:`pull`) stream into ``<file>.part`` and resume it with an HTTP ``Range``
request (after an interruption within the same run, retried with exponential backoff, or in a
later run); the finished file is checked against ``size`` and ``sha256`` before it is renamed
into place. A mismatch deletes the ``.part`` file and fails that file. Files already present
and verified are skipped; a present but corrupt file is downloaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator, model_validator

log = logging.getLogger(__name__)

__all__ = [
    "FileStatus",
    "Group",
    "Manifest",
    "ManifestEntry",
    "ModelStoreError",
    "PullError",
    "PullResult",
    "ResolvedFile",
    "VoiceEntry",
    "default_manifest_path",
    "find_voices",
    "load_manifest",
    "pull",
    "pull_async",
    "sha256_file",
    "status",
]

HF_URL = "https://huggingface.co/{repo}/resolve/{revision}/{path}"
CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ModelStoreError(RuntimeError):
    """Bad manifest, unknown name, or a failed download (message says which and why)."""


# --------------------------------------------------------------------------------------
# manifest


def _check_relative(value: str, what: str) -> str:
    p = PurePosixPath(value)
    if not value or p.is_absolute() or ".." in p.parts or "\\" in value:
        raise ValueError(f"{what} must be a relative path without '..': {value!r}")
    return value


class ManifestEntry(BaseModel):
    """One file of a group."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Path in the hub repo; default local path under the group's dest_dir.")
    dest: str | None = Field(None, description="Local path under the group's dest_dir, if not `path`.")
    url: HttpUrl | None = Field(None, description="Download URL; default derived from the group's hf_repo.")
    size: int | None = Field(None, ge=0, description="Size in bytes.")
    sha256: str | None = Field(None, description="Lower-case hex SHA-256 of the file.")
    unverified: bool = Field(False, description="The hash is not known yet: print it instead of checking.")
    description: str = ""

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_relative(v, "path")

    @field_validator("dest")
    @classmethod
    def _dest(cls, v: str | None) -> str | None:
        return None if v is None else _check_relative(v, "dest")

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().lower()
        if not _SHA256.match(v):
            raise ValueError(f"sha256 must be 64 hex digits, got {v!r}")
        return v

    @model_validator(mode="after")
    def _hash_or_marker(self) -> ManifestEntry:
        if self.unverified and self.sha256:
            raise ValueError(f"{self.path}: has a sha256 and unverified = true; drop one")
        if not self.unverified:
            if self.sha256 is None:
                raise ValueError(f"{self.path}: sha256 missing (write unverified = true if it is not known)")
            if self.size is None:
                raise ValueError(f"{self.path}: size missing")
        return self


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    hf_repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$")
    revision: str = "main"
    dest_dir: str = ""
    default: bool = False
    license: str | None = None
    files: list[ManifestEntry] = Field(min_length=1)

    @field_validator("dest_dir")
    @classmethod
    def _dest_dir(cls, v: str) -> str:
        return v if v in ("", ".") else _check_relative(v, "dest_dir")

    @model_validator(mode="after")
    def _urls(self) -> Group:
        if self.hf_repo is None:
            missing = [f.path for f in self.files if f.url is None]
            if missing:
                raise ValueError(f"no url and no hf_repo for {', '.join(missing)}")
        return self


@dataclass(frozen=True)
class ResolvedFile:
    """A manifest file with its URL and local path worked out."""

    name: str  # local path relative to the models dir, posix
    group: str
    url: str
    size: int | None
    sha256: str | None

    @property
    def unverified(self) -> bool:
        return self.sha256 is None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    groups: dict[str, Group] = Field(default_factory=dict)

    def files(self) -> list[ResolvedFile]:
        out: list[ResolvedFile] = []
        seen: dict[str, str] = {}
        for gname, group in self.groups.items():
            for entry in group.files:
                local = PurePosixPath(group.dest_dir if group.dest_dir not in ("", ".") else ".") / (
                    entry.dest or entry.path
                )
                name = str(local)
                if name in seen:
                    raise ModelStoreError(f"manifest: {name} is listed twice (groups {seen[name]} and {gname})")
                seen[name] = gname
                url = str(entry.url) if entry.url else HF_URL.format(
                    repo=group.hf_repo, revision=group.revision, path=entry.path
                )
                out.append(ResolvedFile(name, gname, url, entry.size, entry.sha256))
        return out

    def select(self, names: Sequence[str] = ()) -> list[ResolvedFile]:
        """Files for group names, file names or unique stems; defaults when ``names`` is empty."""
        files = self.files()
        if not names:
            return [f for f in files if self.groups[f.group].default]
        chosen: dict[str, ResolvedFile] = {}
        for raw in names:
            name = raw.strip().strip("/")
            if name in self.groups:
                hits = [f for f in files if f.group == name]
            else:
                hits = [f for f in files if f.name == name]
                if not hits:
                    hits = [f for f in files if PurePosixPath(f.name).stem == name]
                    if len(hits) > 1:
                        raise ModelStoreError(
                            f"{raw!r} is ambiguous: {', '.join(f.name for f in hits)}"
                        )
            if not hits:
                known = sorted(self.groups) + [f.name for f in files]
                raise ModelStoreError(f"unknown model {raw!r}; known: {', '.join(known)}")
            for f in hits:
                chosen.setdefault(f.name, f)
        return list(chosen.values())


def load_manifest(path: Path | str) -> Manifest:
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ModelStoreError(f"manifest not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelStoreError(f"{path}: invalid TOML: {exc}") from exc
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ModelStoreError(f"{path}: invalid manifest:\n{exc}") from exc
    manifest.files()  # duplicate check
    return manifest


def default_manifest_path(models_dir: Path | None = None) -> Path:
    """``<models_dir>/manifest.toml`` if present, else the one shipped with the code."""
    if models_dir is not None and (Path(models_dir) / "manifest.toml").is_file():
        return Path(models_dir) / "manifest.toml"
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "models" / "manifest.toml", here / "data" / "manifest.toml"):
        if candidate.is_file():
            return candidate
    raise ModelStoreError("no manifest.toml found (looked in the models dir and next to the code)")


# --------------------------------------------------------------------------------------
# hashing / status


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


State = Literal["ok", "present", "unverified", "missing", "partial", "corrupt"]


@dataclass(frozen=True)
class FileStatus:
    file: ResolvedFile
    path: Path
    state: State
    detail: str = ""


def _check(file: ResolvedFile, path: Path, verify: bool = True) -> tuple[State, str]:
    if not path.is_file():
        part = _part(path)
        if part.is_file():
            return "partial", f"{part.stat().st_size} bytes downloaded"
        return "missing", ""
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        return "corrupt", f"size {size}, expected {file.size}"
    if file.unverified:
        return "unverified", "no sha256 in the manifest"
    if not verify:
        return "present", "size matches (not hashed)"
    digest = sha256_file(path)
    if digest != file.sha256:
        return "corrupt", f"sha256 {digest}, expected {file.sha256}"
    return "ok", ""


def status(manifest: Manifest, models_dir: Path, *, verify: bool = True) -> list[FileStatus]:
    """State of every manifest file under ``models_dir`` (hashing each unless ``verify=False``)."""
    out = []
    for f in manifest.files():
        path = Path(models_dir) / f.name
        state, detail = _check(f, path, verify)
        out.append(FileStatus(f, path, state, detail))
    return out


@dataclass(frozen=True)
class VoiceEntry:
    name: str
    directory: Path
    checkpoint: Path | None
    index: Path | None
    problem: str = ""


def find_voices(models_dir: Path) -> list[VoiceEntry]:
    """Voices in ``<models_dir>/voices/<name>/``: one ``.pth`` checkpoint, optionally one ``.index``.

    With several ``.index`` files the ``added_*`` one (what RVC's UI writes last) wins.
    """
    root = Path(models_dir) / "voices"
    if not root.is_dir():
        return []
    voices = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pths = sorted(d.glob("*.pth"))
        indexes = sorted(d.glob("*.index"), key=lambda p: (not p.name.startswith("added_"), p.name))
        problem = ""
        if not pths:
            problem = "no .pth checkpoint"
        elif len(pths) > 1:
            problem = f"{len(pths)} .pth files: keep one"
        voices.append(VoiceEntry(d.name, d, pths[0] if len(pths) == 1 else None,
                                 indexes[0] if indexes else None, problem))
    return voices


# --------------------------------------------------------------------------------------
# downloads


@dataclass
class PullResult:
    file: ResolvedFile
    path: Path
    outcome: Literal["downloaded", "present", "failed"]
    sha256: str | None = None
    message: str = ""


class PullError(ModelStoreError):
    def __init__(self, results: list[PullResult]) -> None:
        self.results = results
        failed = [r for r in results if r.outcome == "failed"]
        super().__init__("; ".join(f"{r.file.name}: {r.message}" for r in failed))


class _Retryable(Exception):
    pass


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


class _Bar:
    """A rich progress bar, or nothing."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        if enabled:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), transient=False,
            )

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def add(self, name: str, total: int | None, done: int) -> int | None:
        return None if self.progress is None else self.progress.add_task(name, total=total, completed=done)

    def update(self, task: int | None, **kw) -> None:
        if self.progress is not None and task is not None:
            self.progress.update(task, **kw)

    def print(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message, markup=False, highlight=False)
        else:
            log.info("%s", message)


async def _fetch_once(session, file: ResolvedFile, part: Path, bar: _Bar, task: int | None) -> None:
    """One request: append to ``part`` from its current size. Raises _Retryable or ModelStoreError."""
    import aiohttp

    offset = part.stat().st_size if part.exists() else 0
    if file.size is not None and offset > file.size:
        part.unlink()
        offset = 0
    if file.size is not None and offset == file.size:
        return  # complete already: verify
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        async with session.get(file.url, headers=headers) as resp:
            if resp.status == 416 and offset:
                # Range past the end: the .part is the whole file (size unknown) or junk.
                if file.size is None:
                    return
                part.unlink()
                raise _Retryable("server refused the resume range; starting over")
            if resp.status in (408, 429) or resp.status >= 500:
                raise _Retryable(f"HTTP {resp.status} {resp.reason}")
            if resp.status >= 400:
                raise ModelStoreError(f"HTTP {resp.status} {resp.reason} for {file.url}")
            if resp.status == 206:
                match = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
                if not match or int(match.group(1)) != offset:
                    part.unlink(missing_ok=True)
                    raise _Retryable("server answered a different range; starting over")
                mode = "ab"
            else:
                offset, mode = 0, "wb"  # 200: the server ignored Range, rewrite from the start
            total = file.size
            if total is None and resp.content_length is not None:
                total = offset + resp.content_length
            bar.update(task, completed=offset, total=total)
            written = offset
            with part.open(mode) as handle:
                async for chunk in resp.content.iter_chunked(CHUNK):
                    handle.write(chunk)
                    written += len(chunk)
                    bar.update(task, completed=written)
                    if file.size is not None and written > file.size:
                        break
            if file.size is not None and written < file.size:
                raise _Retryable(f"connection closed at {written} of {file.size} bytes")
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
        raise _Retryable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


async def _pull_one(session, file: ResolvedFile, root: Path, bar: _Bar, retries: int, backoff: float) -> PullResult:
    path = root / file.name
    part = _part(path)
    if path.is_file():
        state, detail = await asyncio.to_thread(_check, file, path)
        if state in ("ok", "unverified"):
            return PullResult(file, path, "present", file.sha256, "already present" + (
                " (not verified: no sha256 in the manifest)" if state == "unverified" else ""))
        bar.print(f"{file.name}: {detail}; downloading again")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    done = part.stat().st_size if part.exists() else 0
    task = bar.add(file.name, file.size, done)
    attempt = 0
    while True:
        try:
            await _fetch_once(session, file, part, bar, task)
            break
        except _Retryable as exc:
            if attempt >= retries:
                kept = f"; {part.stat().st_size} bytes kept in {part}, run pull again to resume" if part.exists() else ""
                return PullResult(file, path, "failed", None,
                                  f"download failed after {attempt + 1} attempt(s): {exc}{kept}")
            delay = backoff * (2 ** attempt)
            bar.print(f"{file.name}: {exc}; retrying in {delay:.1f} s")
            attempt += 1
            await asyncio.sleep(delay)
        except ModelStoreError as exc:
            return PullResult(file, path, "failed", None, str(exc))
    size = part.stat().st_size
    if file.size is not None and size != file.size:
        part.unlink()
        return PullResult(file, path, "failed", None,
                          f"size {size} bytes, expected {file.size}; the download was deleted")
    digest = await asyncio.to_thread(sha256_file, part)
    if file.sha256 is not None and digest != file.sha256:
        part.unlink()
        return PullResult(file, path, "failed", digest,
                          f"sha256 mismatch: expected {file.sha256}, got {digest}; the download was deleted")
    os.replace(part, path)
    message = "downloaded"
    if file.unverified:
        message = f"downloaded; not verified — its sha256 is {digest} (size {size}): add it to the manifest"
        bar.print(f"{file.name}: sha256 {digest}, size {size} (unverified entry)")
    return PullResult(file, path, "downloaded", digest, message)


async def pull_async(
    names: Sequence[str] = (),
    dest: Path | str = Path("models"),
    progress: bool = True,
    *,
    manifest: Manifest | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    connect_timeout: float = 30.0,
    read_timeout: float = 60.0,
) -> list[PullResult]:
    """Download ``names`` (files, stems or groups; default groups when empty) into ``dest``.

    Files are fetched one after another. Raises :class:`PullError` (with ``.results``) after
    trying every file if any failed; unknown names raise :class:`ModelStoreError` up front.
    """
    import aiohttp

    dest = Path(dest)
    if manifest is None:
        manifest = load_manifest(default_manifest_path(dest))
    files = manifest.select(names)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
    results: list[PullResult] = []
    with _Bar(progress) as bar:
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": "voice-bridge"}) as session:
            for f in files:
                results.append(await _pull_one(session, f, dest, bar, retries, backoff))
    if any(r.outcome == "failed" for r in results):
        raise PullError(results)
    return results


def pull(names: Sequence[str] = (), dest: Path | str = Path("models"), progress: bool = True, **kw) -> list[PullResult]:
    """Blocking :func:`pull_async` (not from inside a running event loop)."""
    return asyncio.run(pull_async(names, dest, progress, **kw))
