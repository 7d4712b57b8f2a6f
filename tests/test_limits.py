"""The abuse limits' bookkeeping (bridge/limits.py), pure: the rate bucket, admission (capacity,
per address, loopback, draining), the client address behind trusted proxies, the close reasons.
What the server does with them, live: tests/hardening/test_limits.py."""

from __future__ import annotations

import pytest

from bridge import limits
from bridge.limits import Admission, ClientAddress, TokenBucket, buffered_text, is_loopback_address


# ----------------------------------------------------------------------------- rate
def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=5, clock=lambda: now[0])
    assert all(bucket.take() for _ in range(5)) and not bucket.take()
    now[0] += 0.1  # one token back
    assert bucket.take() and not bucket.take()
    now[0] += 100  # refills to the burst, no further
    assert sum(bucket.take() for _ in range(10)) == 5


def test_token_bucket_takes_n_at_once_and_a_refusal_spends_nothing() -> None:
    now = [10.0]
    bucket = TokenBucket(rate=2, burst=4, clock=lambda: now[0])
    assert bucket.rate == 2 and bucket.burst == 4.0
    assert not bucket.take(5)  # more than the burst: refused, nothing spent
    assert bucket.take(4) and not bucket.take(0.5)
    now[0] += 1.0  # two tokens back, counted from the last take (not from the refusal)
    assert bucket.take(2) and not bucket.take(0.01)
    now[0] += 0.25
    assert bucket.take(0.5) and not bucket.take(0.01)
    now[0] += 10.0
    assert bucket.take(4.0)  # exactly the burst


def test_token_bucket_reads_the_clock_it_is_given() -> None:
    readings = iter([0.0, 0.0, 0.0, 0.5, 0.5])  # the first reading is at construction
    bucket = TokenBucket(rate=1, burst=1, clock=lambda: next(readings))
    assert bucket.take() and not bucket.take()  # at 0.0
    assert not bucket.take()  # 0.5: half a token
    assert bucket.take(0.5)  # the same half, spent


# ----------------------------------------------------------------------------- admission
def test_admission_counts_capacity_and_addresses() -> None:
    admission = Admission(max_sessions=3, max_per_ip=2)
    assert admission.admit("a") is None and admission.admit("a") is None
    assert admission.admit("a").kind == "per_ip"
    assert admission.admit("b") is None
    assert admission.admit("c").kind == "capacity" and admission.capacity == 0
    admission.release("a")
    assert admission.capacity == 1 and admission.admit("a") is None
    admission.closing = True
    assert admission.admit("d").code == 1001 and admission.capacity == 0
    for address in ["a", "a", "b"]:
        admission.release(address)
    assert admission.active == 0 and not admission.per_ip


def test_capacity_is_the_free_slots_and_zero_while_draining() -> None:
    admission = Admission(max_sessions=4, max_per_ip=0)
    assert admission.capacity == 4 and admission.active == 0 and not admission.closing
    admission.admit("198.51.100.1")
    assert admission.capacity == 3 and admission.active == 1
    admission.closing = True  # SIGTERM: /ready must say not ready though slots are free
    assert admission.capacity == 0
    assert admission.admit("198.51.100.2") is limits.SHUTTING_DOWN
    assert admission.active == 1  # a refusal takes no slot


def test_refusals_name_the_limit_and_take_no_slot() -> None:
    admission = Admission(max_sessions=1, max_per_ip=1)
    assert admission.admit("198.51.100.1") is None
    refused = admission.admit("198.51.100.2")
    assert refused is limits.CAPACITY
    assert (refused.code, refused.kind) == (1013, "capacity") and "capacity" in refused.reason
    assert admission.active == 1 and admission.per_ip == {"198.51.100.1": 1}
    per_ip = Admission(max_sessions=5, max_per_ip=1)
    per_ip.admit("198.51.100.1")
    refused = per_ip.admit("198.51.100.1")
    assert refused is limits.PER_IP and (refused.code, refused.kind) == (1008, "per_ip")
    assert per_ip.active == 1 and per_ip.per_ip["198.51.100.1"] == 1


def test_zero_connections_per_ip_means_no_limit() -> None:
    # The documented meaning of max_connections_per_ip = 0: remote clients are not limited.
    admission = Admission(max_sessions=10, max_per_ip=0)
    assert all(admission.admit("203.0.113.9") is None for _ in range(10))
    assert admission.per_ip["203.0.113.9"] == 10
    assert admission.admit("203.0.113.9") is limits.CAPACITY  # the session cap still holds


def test_the_per_address_limit_is_reached_not_exceeded() -> None:
    admission = Admission(max_sessions=10, max_per_ip=3)
    assert [admission.admit("203.0.113.9") for _ in range(4)] == [None, None, None, limits.PER_IP]
    assert admission.admit("203.0.113.10") is None  # another address has its own count


def test_the_session_cap_is_reached_not_exceeded() -> None:
    admission = Admission(max_sessions=2, max_per_ip=0)
    assert [admission.admit(f"203.0.113.{i}") for i in range(3)] == [None, None, limits.CAPACITY]
    assert admission.capacity == 0


def test_loopback_is_never_refused_per_address() -> None:
    admission = Admission(max_sessions=10, max_per_ip=1)
    assert admission.admit("127.0.0.1") is None and admission.admit("127.0.0.1") is None
    assert admission.admit("::1") is None and admission.admit("::1") is None
    assert admission.admit("203.0.113.9") is None and admission.admit("203.0.113.9").kind == "per_ip"
    assert admission.per_ip["127.0.0.1"] == 2  # counted all the same


def test_an_unknown_address_is_one_client() -> None:
    admission = Admission(max_sessions=10, max_per_ip=1)
    assert admission.admit(None) is None
    assert admission.admit(None) is limits.PER_IP
    assert admission.per_ip == {"-": 1}
    admission.release(None)
    assert admission.active == 0 and admission.per_ip == {}


def test_release_gives_the_slot_back_and_forgets_the_address() -> None:
    admission = Admission(max_sessions=3, max_per_ip=2)
    admission.admit("198.51.100.1")
    admission.admit("198.51.100.1")
    admission.release("198.51.100.1")
    assert admission.active == 1 and admission.per_ip == {"198.51.100.1": 1} and admission.capacity == 2
    admission.release("198.51.100.1")
    assert admission.active == 0 and "198.51.100.1" not in admission.per_ip
    admission.release("198.51.100.1")  # one release too many never makes a negative count
    assert admission.active == 0 and admission.capacity == 3 and "198.51.100.1" not in admission.per_ip


# ----------------------------------------------------------------------------- addresses
@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), (" 127.0.0.1 ", True),
     ("10.0.0.1", False), ("203.0.113.9", False), ("localhost", False), ("", False), (None, False),
     ("X::1", False), ("::1X", False)],  # only spaces and IPv6 brackets are stripped
)
def test_is_loopback_address(address: str | None, loopback: bool) -> None:
    assert is_loopback_address(address) is loopback


def test_client_address_behind_trusted_proxies() -> None:
    resolve = ClientAddress(["10.0.0.0/8", "127.0.0.1"])
    assert resolve("203.0.113.7", "198.51.100.1") == "203.0.113.7"  # untrusted peer: header ignored
    assert resolve("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert resolve("10.1.2.3", "192.0.2.66, 198.51.100.1, 10.9.9.9") == "198.51.100.1"  # last untrusted hop
    assert resolve("127.0.0.1", "not-an-ip") == "127.0.0.1"
    assert resolve("10.1.2.3", None) == "10.1.2.3"
    assert ClientAddress([])("127.0.0.1", "198.51.100.1") == "127.0.0.1"


def test_client_address_edge_cases() -> None:
    resolve = ClientAddress("10.0.0.0/8, 192.0.2.1")  # the setting as one comma-separated string
    assert [str(n) for n in resolve.networks] == ["10.0.0.0/8", "192.0.2.1/32"]
    assert resolve(None, "198.51.100.1") is None
    assert resolve("10.1.2.3", "") == "10.1.2.3"
    assert resolve("10.1.2.3", " , 198.51.100.1 ,, ") == "198.51.100.1"  # blank hops skipped
    assert resolve("10.1.2.3", "10.4.4.4, 192.0.2.1") == "10.1.2.3"  # every hop a proxy: the peer
    assert resolve("10.1.2.3", "[2001:db8::1]") == "[2001:db8::1]"
    assert resolve.trusted("10.255.0.1") and not resolve.trusted("11.0.0.1") and not resolve.trusted("nonsense")
    assert ClientAddress(["10.0.0.0/8", " ", ""]).networks == [resolve.networks[0]]
    assert ClientAddress(["10.0.0.1/8"]).trusted("10.9.9.9")  # host bits allowed (strict=False)


# ----------------------------------------------------------------------------- close reasons
def test_close_reasons_carry_the_documented_codes() -> None:
    assert (limits.CAPACITY.code, limits.PER_IP.code, limits.SHUTTING_DOWN.code) == (1013, 1008, 1001)
    assert (limits.RATE.code, limits.SESSION_TIME.code, limits.IDLE.code) == (1008, 1008, 1000)
    assert (limits.STALLED.code, limits.INTERNAL.code) == (1008, 1011)
    reason = buffered_text(5000, 4000)
    assert (reason.code, reason.kind) == (1008, "buffered")
    assert reason.reason == "too much text waiting for synthesis (5000 > 4000 characters)"


# ----------------------------------------------------------------------------- measured headroom
def test_headroom_caps_capacity_and_refuses_with_load() -> None:
    headroom = [3]
    admission = Admission(max_sessions=5, max_per_ip=0, headroom=lambda: headroom[0])
    assert admission.capacity == 3  # the smaller of the free slots and the measured headroom
    headroom[0] = 9
    assert admission.capacity == 5
    headroom[0] = 0
    assert admission.capacity == 0
    refused = admission.admit("203.0.113.9")
    assert refused is limits.LOAD and (refused.code, refused.kind) == (1013, "load")
    assert refused.reason == "server at capacity (compute), try again later" and admission.active == 0
    headroom[0] = 1
    assert admission.admit("203.0.113.9") is None and admission.active == 1


def test_the_session_cap_and_draining_come_before_headroom() -> None:
    calls = []

    def headroom() -> int:
        calls.append(1)
        return 5

    admission = Admission(max_sessions=1, max_per_ip=0, headroom=headroom)
    assert admission.admit("203.0.113.9") is None
    calls.clear()
    assert admission.capacity == 0 and admission.admit("203.0.113.10") is limits.CAPACITY
    assert calls == []  # full: the measurement is not even asked
    admission.release("203.0.113.9")
    admission.closing = True
    assert admission.capacity == 0 and admission.admit("203.0.113.10") is limits.SHUTTING_DOWN
    assert calls == []
    assert Admission(max_sessions=2, max_per_ip=0).headroom is None
