"""Abuse limits: admission (capacity, connections per address), message rate, close codes.

Pure bookkeeping, no I/O; :mod:`bridge.server` applies the decisions. Every limit is a setting
(see the README's table). What happens past each one:

=========================  =============================================================
limit                      past it
=========================  =============================================================
``max_sessions``           WebSocket closed 1013 "server at capacity, try again later";
                           ``/api/speak`` 503 with ``Retry-After``; ``/ready`` 503
measured capacity          the same, reason "server at capacity (compute), try again later":
(``capacity_*``)           one more listener would push the demand past the usable cores
                           (:mod:`bridge.capacity`)
``max_connections_per_ip`` WebSocket closed 1008; ``/api/speak`` 429 (loopback peers are not
                           limited; behind a proxy, ``trusted_proxies`` lets X-Forwarded-For
                           name the client)
``max_message_bytes``      WebSocket closed 1009 (aiohttp's reader); HTTP 413
``max_token_chars``        ``error`` frame, the token is dropped, the session goes on
``max_buffered_chars``     closed 1008 "too much text waiting for synthesis"
``max_message_rate`` /     closed 1008 "message rate limit exceeded"
``message_burst``
``max_utterance_seconds``  ``error`` frame, the rest of the utterance is dropped
``max_session_seconds``    closed 1008 "session time limit reached"
``idle_timeout_seconds``   closed 1000 "idle timeout"
``send_stall_seconds``     closed 1008 "client stopped reading" (the socket is then aborted)
SIGTERM                    closed 1001 "server shutting down"
=========================  =============================================================
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True, slots=True)
class CloseReason:
    """How and why the server ends a session; ``kind`` labels the metric."""

    code: int
    reason: str
    kind: str


CAPACITY = CloseReason(CLOSE_TRY_AGAIN_LATER, "server at capacity, try again later", "capacity")
LOAD = CloseReason(CLOSE_TRY_AGAIN_LATER, "server at capacity (compute), try again later", "load")
PER_IP = CloseReason(CLOSE_POLICY_VIOLATION, "too many connections from this address", "per_ip")
SHUTTING_DOWN = CloseReason(CLOSE_GOING_AWAY, "server shutting down", "shutdown")
RATE = CloseReason(CLOSE_POLICY_VIOLATION, "message rate limit exceeded", "rate")
SESSION_TIME = CloseReason(CLOSE_POLICY_VIOLATION, "session time limit reached", "session_time")
IDLE = CloseReason(CLOSE_NORMAL, "idle timeout", "idle")
STALLED = CloseReason(CLOSE_POLICY_VIOLATION, "client stopped reading", "stalled")
INTERNAL = CloseReason(CLOSE_INTERNAL_ERROR, "internal error", "internal")


def buffered_text(chars: int, limit: int) -> CloseReason:
    return CloseReason(
        CLOSE_POLICY_VIOLATION, f"too much text waiting for synthesis ({chars} > {limit} characters)", "buffered"
    )


class TokenBucket:
    """``rate`` events per second sustained, up to ``burst`` at once."""

    __slots__ = ("rate", "burst", "_tokens", "_last", "_clock")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self, n: float = 1.0) -> bool:
        """Spend ``n``; False (nothing spent) when the bucket is short."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < n:
            return False
        self._tokens -= n
        return True


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def is_loopback_address(address: str | None) -> bool:
    ip = _ip(address) if address else None
    return ip is not None and ip.is_loopback


class ClientAddress:
    """The client's address: the peer, or, when the peer is a trusted proxy, the last address
    in ``X-Forwarded-For`` that is not a trusted proxy."""

    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        if isinstance(trusted_proxies, str):
            trusted_proxies = trusted_proxies.split(",")
        self.networks = [ipaddress.ip_network(t.strip(), strict=False) for t in trusted_proxies if t.strip()]

    def trusted(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def __call__(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if peer is None or not forwarded_for or not self.trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop if _ip(hop) is not None else peer
        return peer


class Admission:
    """Open sessions (WebSocket sessions and ``/api/speak`` requests), in all and per address.

    Loopback addresses are counted but never refused: they are this machine (local tools, a
    reverse proxy on this host), not one remote client. ``headroom``, when given, says how many
    more listeners the measured compute still carries (:mod:`bridge.capacity`); at 0 new
    sessions are refused even below ``max_sessions``.
    """

    def __init__(self, max_sessions: int, max_per_ip: int, headroom: Callable[[], int] | None = None) -> None:
        self.max_sessions = max_sessions
        self.max_per_ip = max_per_ip
        self.headroom = headroom
        self.active = 0
        self.per_ip: Counter[str] = Counter()
        self.closing = False

    @property
    def capacity(self) -> int:
        if self.closing:
            return 0
        static = max(0, self.max_sessions - self.active)
        return static if self.headroom is None or static == 0 else min(static, self.headroom())

    def admit(self, address: str | None) -> CloseReason | None:
        """Take a slot for ``address``; the refusal, or None when admitted (then call release)."""
        if self.closing:
            return SHUTTING_DOWN
        if self.active >= self.max_sessions:
            return CAPACITY
        if self.headroom is not None and self.headroom() < 1:
            return LOAD
        key = address or "-"
        if self.max_per_ip and self.per_ip[key] >= self.max_per_ip and not is_loopback_address(address):
            return PER_IP
        self.active += 1
        self.per_ip[key] += 1
        return None

    def release(self, address: str | None) -> None:
        key = address or "-"
        self.active = max(0, self.active - 1)
        self.per_ip[key] -= 1
        if self.per_ip[key] <= 0:
            del self.per_ip[key]
