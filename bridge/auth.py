"""Who may use the bridge: API keys and browser origins (an aiohttp middleware).

* **Keys** (``api_keys``): when any is set, every route but the public ones needs one, as
  ``Authorization: Bearer KEY`` or ``?token=KEY`` (browsers cannot set headers on a WebSocket).
  The presented key is checked against *every* configured key in constant time: SHA-256 digests
  compared with :func:`hmac.compare_digest`, so neither a key's content nor its length leaks
  through timing, and the loop never stops at the first match.
* **Origins** (``allowed_origins``): a browser sends ``Origin`` on a WebSocket handshake and on
  cross-site POSTs, and a page on any site may open ``ws://127.0.0.1:8765`` from a visitor's
  browser (cross-site WebSocket hijacking). Allowed: requests with no ``Origin`` (non-browser
  clients), the bridge's own origin (its ``/demo`` page), and the allowlist (``*``: any).
* **Public routes**: ``/health``, ``/ready``, ``/`` and the static demo page (``/demo``,
  ``/static/…``) stay open (the demo page passes ``?token=`` itself); ``/metrics`` is public only
  with ``metrics_auth = false``.

Refusals are HTTP errors before any upgrade: 401 (key missing or wrong, with
``WWW-Authenticate: Bearer``) and 403 (origin not allowed).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from pydantic import SecretStr
from yarl import URL

from bridge.config import AccessSettings

log = logging.getLogger(__name__)

#: Routes anyone may call, keys or not ("/" only redirects to the demo page).
PUBLIC_PATHS = frozenset({"/", "/health", "/ready", "/favicon.ico"})
#: Route prefixes anyone may call: the demo page and its static files (the page itself passes
#: ``?token=`` on its WebSocket).
PUBLIC_PREFIXES = ("/demo", "/static")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _secret(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def _listed(values: Iterable[str] | str) -> list[str]:
    if isinstance(values, str):
        values = values.split(",")
    return [v.strip() for v in values if v and v.strip()]


def _origin_key(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class Access:
    """The access rules of one app, built from its settings."""

    def __init__(self, settings: AccessSettings) -> None:
        keys = [_secret(k) for k in settings.api_keys]
        self._digests = [_digest(k) for k in keys if k]
        origins = [_origin_key(o) for o in _listed(settings.allowed_origins)]
        self.any_origin = "*" in origins
        self._origins = frozenset(origins)
        self.metrics_public = not settings.metrics_auth

    @property
    def keys_required(self) -> bool:
        return bool(self._digests)

    def key_ok(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the keys; constant time over all keys."""
        if not self._digests:
            return True
        candidate = _digest(presented or "")
        match = False
        for digest in self._digests:
            match |= hmac.compare_digest(candidate, digest)
        return match and presented is not None

    @staticmethod
    def presented_key(request: web.BaseRequest) -> str | None:
        header = request.headers.get("Authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        token = request.query.get("token")
        return token if token else None

    def origin_ok(self, request: web.BaseRequest) -> bool:
        origin = request.headers.get("Origin")
        if origin is None or self.any_origin:
            return True
        if _origin_key(origin) in self._origins:
            return True
        return _same_origin(origin, request.host)

    def is_public(self, path: str) -> bool:
        if path in PUBLIC_PATHS or (self.metrics_public and path == "/metrics"):
            return True
        return any(path == p or path.startswith(p + "/") for p in PUBLIC_PREFIXES)


def _same_origin(origin: str, host_header: str) -> bool:
    """``Origin`` names the host (and port) this request was sent to: a page the bridge served."""
    try:
        url = URL(origin)
        if url.scheme not in ("http", "https") or not url.host:
            return False
        here = URL.build(scheme=url.scheme, authority=host_header)
        return (url.host.lower(), url.port) == ((here.host or "").lower(), here.port)
    except (ValueError, TypeError):
        return False


def _error_body(request: web.BaseRequest, message: str, code: str) -> dict[str, object]:
    """The refusal in the shape the route's clients read: OpenAI's under ``/v1/``."""
    if request.path.startswith("/v1/"):
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return {"error": message}


def access_middleware(access: Access, on_refusal: Callable[[str], None] | None = None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse requests without a valid key (401) or from a foreign page (403)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if access.is_public(request.path):
            return await handler(request)
        if not access.origin_ok(request):
            reason = "origin"
            response: web.StreamResponse = web.json_response(
                _error_body(request, f"origin {request.headers.get('Origin', '')[:100]!r} is not allowed", "origin_not_allowed"),
                status=403,
            )
        elif not access.key_ok(access.presented_key(request)):
            reason = "auth"
            response = web.json_response(
                _error_body(request, "a valid API key is required (Authorization: Bearer KEY, or ?token=KEY)", "invalid_api_key"),
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="voice-bridge"'},
            )
        else:
            return await handler(request)
        log.info("request refused", extra={"reason": reason, "peer": request.remote, "path": request.path})
        if on_refusal is not None:
            on_refusal(reason)
        return response

    return middleware


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # "", "0.0.0.0"-style wildcards are addresses; names may resolve anywhere


def warn_if_exposed(host: str, settings: AccessSettings) -> bool:
    """Log a loud warning when listening on ``host``, beyond loopback, with no API keys; True if it did."""
    if is_loopback(host) or any(_secret(k) for k in settings.api_keys):
        return False
    log.warning(
        "LISTENING ON %s WITHOUT API KEYS: anyone who can reach this address can use this server "
        "and its GPU. Set VOICE_BRIDGE_API_KEYS (comma-separated) or listen on 127.0.0.1.",
        host or "all interfaces",
    )
    return True


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s\"]*")


class RedactTokens(logging.Filter):
    """Replaces ``?token=`` values in log lines (aiohttp's access log writes the query) with ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "token=" in record.msg:
            record.msg = _TOKEN_IN_QUERY.sub(r"\1***", record.msg)
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "token=" in a for a in record.args):
            record.args = tuple(_TOKEN_IN_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


def redact_access_log() -> None:
    """Keep API keys passed as ``?token=`` out of aiohttp's access log (idempotent)."""
    access = logging.getLogger("aiohttp.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
