"""API keys, the Origin allowlist, the open-listener warning, and keeping keys out of logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import websockets
from pydantic import SecretStr

from bridge.auth import Access, RedactTokens, is_loopback, warn_if_exposed
from bridge.config import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
KEYS = ["first-key-0123456789", "second-key-abcdef"]


# ----------------------------------------------------------------------------- unit
def test_keys_from_the_environment_are_comma_separated_and_secret() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_BRIDGE_")}
    env.update(VOICE_BRIDGE_API_KEYS=" alpha , beta,,", VOICE_BRIDGE_ALLOWED_ORIGINS="https://a.example,https://b.example")
    code = (
        "from bridge.config import Settings; s = Settings(); "
        "print([k.get_secret_value() for k in s.access.api_keys], s.access.allowed_origins, 'alpha' in repr(s))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)}, cwd="/", capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['alpha', 'beta'] ['https://a.example', 'https://b.example'] False"


def test_key_check_accepts_every_key_and_nothing_else() -> None:
    access = Access(make_settings(api_keys=[SecretStr(k) for k in KEYS]).access)
    assert access.keys_required
    assert all(access.key_ok(k) for k in KEYS)
    for wrong in [None, "", KEYS[0][:-1], KEYS[0] + "x", KEYS[1].upper(), " " + KEYS[0], "\ud800"]:
        assert not access.key_ok(wrong)
    assert Access(make_settings().access).key_ok(None)  # no keys: open


def test_key_check_compares_against_all_keys_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.auth as auth

    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    access = Access(make_settings(api_keys=KEYS).access)
    assert access.key_ok(KEYS[0])  # a match on the first key still compares with the second
    assert len(calls) == 2 and all(len(a) == len(b) == 32 for a, b in calls)  # digests: no length leak
    calls.clear()
    assert not access.key_ok("x")
    assert len(calls) == 2


def test_loopback_and_the_open_listener_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.8.9.1")
    assert not any(is_loopback(h) for h in ["0.0.0.0", "::", "", "192.168.1.4", "example.com"])
    with caplog.at_level(logging.WARNING, logger="bridge.auth"):
        assert warn_if_exposed("0.0.0.0", make_settings().access)
        assert "WITHOUT API KEYS" in caplog.text
        caplog.clear()
        assert not warn_if_exposed("0.0.0.0", make_settings(api_keys=KEYS).access)
        assert not warn_if_exposed("127.0.0.1", make_settings().access)
        assert caplog.text == ""


def test_tokens_in_query_strings_are_redacted_from_logs() -> None:
    record = logging.makeLogRecord(
        {"msg": '127.0.0.1 "GET /ws/stream?events=1&token=%s HTTP/1.1" 101' % KEYS[0], "args": ()}
    )
    RedactTokens().filter(record)
    assert KEYS[0] not in record.getMessage() and "token=***" in record.getMessage()


# ----------------------------------------------------------------------------- live
async def _status(url: str, **kwargs: object) -> int:
    try:
        async with websockets.connect(url, open_timeout=10, **kwargs):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


async def test_websocket_and_speak_need_a_key_when_keys_are_set(server_factory) -> None:
    srv = await server_factory(api_keys=KEYS)
    assert await _status(srv.ws_url) == 401
    assert await _status(srv.ws_url + "?token=nope") == 401
    assert await _status(srv.ws_url, additional_headers={"Authorization": "Bearer nope"}) == 401
    assert await _status(srv.ws_url, additional_headers={"Authorization": f"Basic {KEYS[0]}"}) == 401
    assert await _status(srv.ws_url, additional_headers={"Authorization": f"Bearer {KEYS[0]}"}) == 101
    assert await _status(srv.ws_url + f"?token={KEYS[1]}&events=1") == 101
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.url + "/api/speak", json={"text": "Hi."}) as response:
            assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "API key" in (await response.json())["error"]
        async with http.post(
            srv.url + "/api/speak", json={"text": "Hi."}, headers={"Authorization": f"Bearer {KEYS[1]}"}
        ) as response:
            assert response.status == 200 and response.content_type == "audio/wav"
        async with http.get(srv.url + "/health") as response:  # always open
            assert response.status == 200
        async with http.get(srv.url + "/metrics") as response:  # protected by default
            assert response.status == 401
        async with http.get(srv.url + "/metrics", headers={"Authorization": f"Bearer {KEYS[0]}"}) as response:
            assert response.status == 200 and "voice_bridge_refused_total" in await response.text()
            assert 'voice_bridge_refused_total{reason="auth"}' in await response.text()
    # A keyed session works end to end.
    async with websockets.connect(srv.ws_url + f"?events=1&token={KEYS[0]}", compression=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"


async def test_metrics_can_be_left_open(server_factory) -> None:
    srv = await server_factory(api_keys=KEYS, metrics_auth=False)
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.url + "/metrics") as response:
            assert response.status == 200
        # Public paths answer without a key: the demo page and its assets, and a missing file
        # under a public prefix is a 404, not a 401.
        for public, status in (("/demo", 200), ("/static/demo.js", 200), ("/", 200), ("/demo/index.html", 404)):
            async with http.get(srv.url + public) as response:
                assert response.status == status, public
        async with http.get(srv.url + "/staticx") as response:  # a prefix is a path segment
            assert response.status == 401


async def test_origin_allowlist(server_factory) -> None:
    srv = await server_factory(allowed_origins=["https://app.example"])
    host = srv.url.removeprefix("http://")
    assert await _status(srv.ws_url) == 101  # no Origin: not a browser
    assert await _status(srv.ws_url, origin="https://app.example") == 101
    assert await _status(srv.ws_url, origin="http://evil.example") == 403
    assert await _status(srv.ws_url, origin="null") == 403  # file:// pages, sandboxed frames
    assert await _status(srv.ws_url, origin=f"http://{host}") == 101  # the bridge's own /demo page
    async with aiohttp.ClientSession() as http:
        async with http.post(
            srv.url + "/api/speak", data='{"text": "hi"}', headers={"Origin": "http://evil.example", "Content-Type": "text/plain"}
        ) as response:
            assert response.status == 403  # a cross-site "simple" POST never reaches the engines
    default = await server_factory()  # no allowlist: same-origin and non-browser clients only
    assert await _status(default.ws_url, origin="http://evil.example") == 403
    assert await _status(default.ws_url) == 101
    anyone = await server_factory(allowed_origins=["*"])
    assert await _status(anyone.ws_url, origin="http://evil.example") == 101


async def test_origin_and_key_are_both_needed(server_factory) -> None:
    srv = await server_factory(api_keys=KEYS, allowed_origins=["https://app.example"])
    assert await _status(srv.ws_url + f"?token={KEYS[0]}", origin="http://evil.example") == 403
    assert await _status(srv.ws_url, origin="https://app.example") == 401
    assert await _status(srv.ws_url + f"?token={KEYS[0]}", origin="https://app.example") == 101
