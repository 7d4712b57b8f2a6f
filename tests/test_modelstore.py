"""Manifest, downloads (Range resume, retries, checksums) and the `models` CLI."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import threading
from pathlib import Path

import pytest
import rich
import rich.progress
from aiohttp import web
from rich.console import Console
from typer.testing import CliRunner

from bridge import modelstore
from bridge.cli_models import app
from bridge.modelstore import Manifest, ModelStoreError, PullError, load_manifest, pull

REPO_MANIFEST = Path(__file__).resolve().parents[1] / "models" / "manifest.toml"


class FileServer:
    """aiohttp on 127.0.0.1:<free port>, in a thread: Range support, scripted failures."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_once: set[str] = set()  # send half the body then cut the connection, once
        self.fail_status: dict[str, list[int]] = {}  # statuses to answer first, one per request
        self.requests: list[tuple[str, str | None]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app_ = web.Application()
        app_.router.add_get("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app_)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        rng = request.headers.get("Range")
        self.requests.append((path, rng))
        if self.fail_status.get(path):
            return web.Response(status=self.fail_status[path].pop(0))
        if path not in self.files:
            return web.Response(status=404)
        data = self.files[path]
        start = 0
        status = 200
        headers = {}
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_length = len(body)
        await resp.prepare(request)
        if path in self.drop_once:
            self.drop_once.discard(path)
            await resp.write(body[: len(body) // 2])
            await asyncio.sleep(0.05)
            request.transport.abort()
            return resp
        await resp.write(body)
        await resp.write_eof()
        return resp

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture(scope="session")
def server():
    s = FileServer()
    yield s
    s.close()


def blob(n: int, seed: int) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + b"x" * (n % 32)


def manifest_for(server: FileServer, entries: dict[str, bytes], *, wrong_sha: set[str] = frozenset(),
                 unverified: set[str] = frozenset(), group: str = "test") -> Manifest:
    files = []
    for name, data in entries.items():
        server.files[name] = data
        entry = {"path": name, "url": server.url(name), "size": len(data)}
        if name in unverified:
            entry["unverified"] = True
        else:
            digest = hashlib.sha256(data).hexdigest()
            entry["sha256"] = ("0" * 64) if name in wrong_sha else digest
        files.append(entry)
    return Manifest.model_validate({"groups": {group: {"default": True, "files": files}}})


FAST = dict(progress=False, retries=3, backoff=0.01)


def test_pull_checksum_match_then_skip(server, tmp_path):
    data = blob(300_000, 1)
    m = manifest_for(server, {"a/one.bin": data})
    res = pull((), tmp_path, manifest=m, **FAST)
    assert [r.outcome for r in res] == ["downloaded"]
    assert (tmp_path / "a/one.bin").read_bytes() == data
    assert not (tmp_path / "a/one.bin.part").exists()
    n = len(server.requests)
    res = pull(["one"], tmp_path, manifest=m, **FAST)  # by stem
    assert [r.outcome for r in res] == ["present"] and len(server.requests) == n


def test_resume_after_dropped_connection(server, tmp_path):
    data = blob(2_500_000, 2)
    m = manifest_for(server, {"big.bin": data})
    server.drop_once.add("big.bin")
    start = len(server.requests)
    res = pull(["big.bin"], tmp_path, manifest=m, **FAST)
    assert res[0].outcome == "downloaded"
    assert (tmp_path / "big.bin").read_bytes() == data
    reqs = [r for r in server.requests[start:] if r[0] == "big.bin"]
    assert len(reqs) == 2 and reqs[0][1] is None
    offset = int(re.fullmatch(r"bytes=(\d+)-", reqs[1][1]).group(1))
    assert 0 < offset < len(data)


def test_resume_across_runs(server, tmp_path):
    data = blob(1_000_000, 3)
    m = manifest_for(server, {"c.bin": data})
    server.drop_once.add("c.bin")
    with pytest.raises(PullError) as info:
        pull(["c.bin"], tmp_path, manifest=m, progress=False, retries=0)
    assert "run pull again to resume" in str(info.value)
    part = tmp_path / "c.bin.part"
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    start = len(server.requests)
    pull(["c.bin"], tmp_path, manifest=m, **FAST)
    assert (tmp_path / "c.bin").read_bytes() == data and not part.exists()
    assert server.requests[start:] == [("c.bin", f"bytes={kept}-")]


def test_checksum_mismatch_deletes_part(server, tmp_path):
    m = manifest_for(server, {"bad.bin": blob(10_000, 4)}, wrong_sha={"bad.bin"})
    with pytest.raises(PullError, match="sha256 mismatch: expected 0000"):
        pull((), tmp_path, manifest=m, **FAST)
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()


def test_corrupt_present_file_is_replaced(server, tmp_path):
    data = blob(5_000, 5)
    m = manifest_for(server, {"d.bin": data})
    (tmp_path / "d.bin").write_bytes(b"y" * len(data))
    res = pull((), tmp_path, manifest=m, **FAST)
    assert res[0].outcome == "downloaded" and (tmp_path / "d.bin").read_bytes() == data


def test_retry_on_server_error_and_404(server, tmp_path):
    data = blob(4_000, 6)
    m = manifest_for(server, {"e.bin": data})
    server.fail_status["e.bin"] = [503, 502]
    assert pull((), tmp_path, manifest=m, **FAST)[0].outcome == "downloaded"
    gone = Manifest.model_validate({"groups": {"g": {"default": True, "files": [
        {"path": "nope.bin", "url": server.url("nope.bin"), "size": 1, "sha256": "a" * 64}]}}})
    start = len(server.requests)
    with pytest.raises(PullError, match="HTTP 404"):
        pull((), tmp_path, manifest=gone, **FAST)
    assert len(server.requests) - start == 1  # no retry on 404


def test_unreachable_host_reports_clearly(tmp_path):
    m = Manifest.model_validate({"groups": {"g": {"default": True, "files": [
        {"path": "x.bin", "url": "http://127.0.0.1:9/x.bin", "size": 1, "sha256": "a" * 64}]}}})
    with pytest.raises(PullError, match=r"x.bin: download failed after 2 attempt\(s\)"):
        pull((), tmp_path, manifest=m, progress=False, retries=1, backoff=0.01)


def test_unverified_entry_prints_hash(server, tmp_path):
    data = blob(1234, 7)
    m = manifest_for(server, {"u.json": data}, unverified={"u.json"})
    res = pull((), tmp_path, manifest=m, **FAST)
    assert res[0].sha256 == hashlib.sha256(data).hexdigest()
    assert res[0].sha256 in res[0].message


def test_selection_errors(server):
    m = manifest_for(server, {"s/rm.pt": b"1", "s/rm.onnx": b"2"}, group="sel")
    with pytest.raises(ModelStoreError, match="ambiguous"):
        m.select(["rm"])
    with pytest.raises(ModelStoreError, match="unknown model 'zzz'"):
        m.select(["zzz"])
    assert {f.name for f in m.select(["sel"])} == {"s/rm.pt", "s/rm.onnx"}


def test_manifest_validation(tmp_path):
    def check(toml: str, match: str) -> None:
        p = tmp_path / "m.toml"
        p.write_text(toml)
        with pytest.raises(ModelStoreError, match=match):
            load_manifest(p)

    check('[groups.g]\nhf_repo = "a/b"\n[[groups.g.files]]\npath = "x"\nsize = 1\n', "sha256 missing")
    check('[groups.g]\nhf_repo = "a/b"\n[[groups.g.files]]\npath = "../x"\nunverified = true\n', "relative")
    check('[groups.g]\n[[groups.g.files]]\npath = "x"\nunverified = true\n', "no url and no hf_repo")
    check('[groups.g]\nhf_repo = "a/b"\n[[groups.g.files]]\npath = "x"\nsize = 1\nsha256 = "zz"\n', "64 hex")
    check('[groups.g]\nhf_repo = "a/b"\n[[groups.g.files]]\npath = "x"\nsize = 1\nsha256 = "' + "a" * 64
          + '"\nunverified = true\n', "drop one")
    check("[groups.g\n", "invalid TOML")


def test_repo_manifest_is_complete():
    m = load_manifest(REPO_MANIFEST)
    files = {f.name: f for f in m.files()}
    assert {"hubert_base.pt", "rmvpe.pt"} <= set(files)
    for f in files.values():
        assert f.url.startswith("https://")
        assert f.sha256 is not None or f.unverified
        if not f.unverified:
            assert f.size and re.fullmatch(r"[0-9a-f]{64}", f.sha256)
    assert files["hubert_base.pt"].url == "https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/hubert_base.pt"
    assert files["rmvpe.pt"].size == 181_184_272
    assert files["hubert_base.pt"].sha256 == "f54b40fd2802423a5643779c4861af1e9ee9c1564dc9d32f54f20b5ffba7db96"
    assert {f.name for f in m.select()} == {"hubert_base.pt", "rmvpe.pt"}
    assert modelstore.default_manifest_path(None) == REPO_MANIFEST


def test_cli_list(server, tmp_path):
    ok, bad = blob(2000, 8), blob(3000, 9)
    m = manifest_for(server, {"ok.bin": ok, "bad.bin": bad, "gone.bin": b"z" * 10})
    (tmp_path / "ok.bin").write_bytes(ok)
    (tmp_path / "bad.bin").write_bytes(b"q" * len(bad))
    (tmp_path / "gone.bin.part").write_bytes(b"z" * 4)
    voice = tmp_path / "voices" / "alice"
    voice.mkdir(parents=True)
    (voice / "alice.pth").write_bytes(b"")
    (voice / "added_IVF1_Flat_nprobe_1_alice_v2.index").write_bytes(b"")
    (tmp_path / "voices" / "empty").mkdir()
    manifest_file = tmp_path / "manifest.toml"
    lines = ["[groups.test]", "default = true"]
    for f in m.files():
        lines += ["[[groups.test.files]]", f'path = "{f.name}"', f'url = "{f.url}"', f"size = {f.size}",
                  f'sha256 = "{f.sha256}"']
    manifest_file.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["list", "--dest", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    row = lambda name: next(line for line in out.splitlines() if name in line)  # noqa: E731
    assert "ok" in row("ok.bin") and "corrupt" in row("bad.bin") and "partial" in row("gone.bin")
    assert "alice" in out and "added_IVF1_Flat_nprobe_1_alice_v2.index" in out
    assert "no .pth checkpoint" in row("empty")


def test_cli_pull(server, tmp_path):
    data = blob(7000, 10)
    m = manifest_for(server, {"p.bin": data})
    mf = tmp_path / "m.toml"
    f = m.files()[0]
    mf.write_text(f'[groups.t]\ndefault = true\n[[groups.t.files]]\npath = "p.bin"\nurl = "{f.url}"\n'
                  f'size = {f.size}\nsha256 = "{f.sha256}"\n')
    runner = CliRunner()
    result = runner.invoke(app, ["pull", "--dest", str(tmp_path / "out"), "--manifest", str(mf), "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "p.bin").read_bytes() == data
    result = runner.invoke(app, ["pull", "nothing", "--dest", str(tmp_path), "--manifest", str(mf), "-q"])
    assert result.exit_code == 2 and "unknown model" in result.output


# ---- progress bar ----------------------------------------------------------------------


def _manifest_file(path: Path, m: Manifest) -> Path:
    lines = ["[groups.t]", "default = true"]
    for f in m.files():
        lines += ["[[groups.t.files]]", f'path = "{f.name}"', f'url = "{f.url}"', f"size = {f.size}",
                  f'sha256 = "{f.sha256}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def _progress_line(out: str, name: str) -> str | None:
    """The rendered bar for ``name``: its description, the bar, then done/total."""
    return next((line for line in out.splitlines() if line.startswith(name) and "━" in line), None)


def test_pull_shows_progress_that_reaches_the_total(server, tmp_path, monkeypatch):
    # Several chunks, a connection dropped halfway and a .part left by an earlier run: the bar
    # starts at the kept bytes, never goes back when the download resumes, and ends at the size.
    data = blob(2_500_000, 12)
    m = manifest_for(server, {"w/progress.bin": data})
    kept = 300_000
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "progress.bin.part").write_bytes(data[:kept])
    server.drop_once.add("w/progress.bin")

    out = io.StringIO()
    monkeypatch.setattr(rich, "_console", Console(file=out, width=120, color_system=None))
    seen: list[tuple[str, float | None, float]] = []  # (description, total, completed) after each change
    real_add, real_update = rich.progress.Progress.add_task, rich.progress.Progress.update

    def record(progress: rich.progress.Progress, task_id: rich.progress.TaskID) -> None:
        task = progress._tasks[task_id]
        seen.append((task.description, task.total, task.completed))

    def add_task(self, *args, **kwargs):
        task_id = real_add(self, *args, **kwargs)
        record(self, task_id)
        return task_id

    def update(self, task_id, **kwargs):
        real_update(self, task_id, **kwargs)
        record(self, task_id)

    monkeypatch.setattr(rich.progress.Progress, "add_task", add_task)
    monkeypatch.setattr(rich.progress.Progress, "update", update)

    res = pull((), tmp_path, manifest=m, progress=True, retries=3, backoff=0.01)
    assert [r.outcome for r in res] == ["downloaded"]
    assert (tmp_path / "w" / "progress.bin").read_bytes() == data

    assert {d for d, _, _ in seen} == {"w/progress.bin"}
    assert all(total == len(data) for _, total, _ in seen)
    done = [c for _, _, c in seen]
    assert done[0] == kept  # resumed, not restarted
    assert done == sorted(done)  # never back, not even across the dropped connection
    assert done[-1] == len(data)
    assert len(set(done)) >= 4  # it moved in steps, not only at the end

    text = out.getvalue()
    line = _progress_line(text, "w/progress.bin")
    assert line is not None, text
    assert "2.5/2.5 MB" in line
    assert "retrying in" in text  # the retry notice is printed through the bar, not over it


def test_cli_pull_shows_progress_unless_quiet(server, tmp_path):
    data = blob(900, 13)  # under 1 kB: the bar counts in bytes, exactly
    mf = _manifest_file(tmp_path / "m.toml", manifest_for(server, {"bar.bin": data}))
    runner = CliRunner()
    shown = runner.invoke(app, ["pull", "--dest", str(tmp_path / "a"), "--manifest", str(mf)],
                          env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    line = _progress_line(shown.stdout, "bar.bin")
    assert line is not None, shown.output
    assert "900/900 bytes" in line
    assert "✓ bar.bin: downloaded" in shown.stderr
    quiet = runner.invoke(app, ["pull", "--dest", str(tmp_path / "b"), "--manifest", str(mf), "-q"],
                          env={"COLUMNS": "120"})
    assert quiet.exit_code == 0, quiet.output
    assert (tmp_path / "b" / "bar.bin").read_bytes() == data
    assert _progress_line(quiet.output, "bar.bin") is None and "bytes" not in quiet.output
    assert "✓ bar.bin: downloaded" in quiet.stderr
