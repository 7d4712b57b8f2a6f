"""The model workers: the scheduler's order is the order work runs in (synchronized on events
and futures, never on sleeps)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from bridge.workers import ModelWorkers, available_cores, cores_for_this_call


def _blocked(workers: ModelWorkers) -> threading.Event:
    """Occupy every worker until the returned event is set."""
    release = threading.Event()
    started = [threading.Event() for _ in range(workers.workers)]
    for event in started:
        workers.submit_by(-1.0, lambda e=event: (e.set(), release.wait(10)))
    for event in started:
        assert event.wait(10)
    return release


def test_waiting_work_runs_earliest_deadline_first() -> None:
    workers = ModelWorkers(1, clock=lambda: 0.0)
    try:
        release = _blocked(workers)
        ran: list[str] = []
        futures = [workers.submit_by(d, ran.append, name) for d, name in [(3.0, "c"), (1.0, "a"), (2.0, "b")]]
        futures.append(workers.submit(ran.append, "now"))  # plain submit: due at the clock's now (0.0)
        assert workers.queued == 4
        release.set()
        for future in futures:
            future.result(timeout=10)
        assert ran == ["now", "a", "b", "c"]
        assert workers.queued == 0
    finally:
        workers.shutdown()


def test_cancelled_work_is_skipped_and_errors_reach_the_caller() -> None:
    workers = ModelWorkers(1)
    try:
        release = _blocked(workers)
        ran: list[str] = []
        skipped = workers.submit_by(0.0, ran.append, "skipped")
        assert skipped.cancel()
        failing = workers.submit_by(1.0, lambda: 1 / 0)
        kept = workers.submit_by(2.0, ran.append, "kept")
        release.set()
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=10)
        kept.result(timeout=10)
        assert ran == ["kept"]
    finally:
        workers.shutdown()


def test_shutdown_cancels_what_waits_and_refuses_new_work() -> None:
    workers = ModelWorkers(2)
    release = _blocked(workers)
    waiting = workers.submit_by(0.0, lambda: "never")
    release.set()
    workers.shutdown(wait=True, cancel_futures=True)
    assert waiting.cancelled() or waiting.result(timeout=10) == "never"
    with pytest.raises(RuntimeError):
        workers.submit(lambda: None)
    assert not any(t.is_alive() for t in workers._threads)  # noqa: SLF001


def test_the_event_loop_awaits_work_through_run_in_executor() -> None:
    workers = ModelWorkers(available_cores())

    async def main() -> int:
        return await asyncio.get_running_loop().run_in_executor(workers, sum, [1, 2, 3])

    try:
        assert asyncio.run(main()) == 6
    finally:
        workers.shutdown()


def test_at_least_one_worker() -> None:
    with pytest.raises(ValueError):
        ModelWorkers(0)
    assert available_cores() >= 1


def test_a_call_running_alone_may_use_every_core_and_one_among_others_uses_one() -> None:
    from bridge.workers import cores_for_this_call

    workers = ModelWorkers(2)
    workers._cores = 4  # noqa: SLF001 - as on a 4-core machine
    try:
        assert workers.submit(cores_for_this_call).result(timeout=10) == 4
        release = _blocked(workers)  # both workers busy: whatever runs next has company
        waiting = [workers.submit_by(0.0, cores_for_this_call) for _ in range(3)]
        release.set()
        assert [f.result(timeout=10) for f in waiting][0] == 1
    finally:
        workers.shutdown()


def test_a_call_knows_how_much_work_waited_behind_it_when_it_started() -> None:
    from bridge.workers import jobs_competing_with_this_call

    assert jobs_competing_with_this_call() == 0  # outside the workers
    workers = ModelWorkers(1, clock=lambda: 0.0)
    try:
        release = _blocked(workers)
        # Deadlines 1, 2, 3, 4: each starts with the later ones still waiting.
        seen = [workers.submit_by(float(k), jobs_competing_with_this_call) for k in range(1, 5)]
        release.set()
        assert [f.result(timeout=10) for f in seen] == [3, 2, 1, 0]
        assert workers.submit(jobs_competing_with_this_call).result(timeout=10) == 0  # alone
    finally:
        workers.shutdown()


def test_a_call_counts_the_work_running_beside_it_as_competing() -> None:
    from bridge.workers import jobs_competing_with_this_call

    workers = ModelWorkers(2, clock=lambda: 0.0)
    try:
        # One worker held by a long job: a call on the other one has company, nothing waiting.
        release = threading.Event()
        started = threading.Event()
        workers.submit_by(-1.0, lambda: (started.set(), release.wait(10)))
        assert started.wait(10)
        assert workers.submit(jobs_competing_with_this_call).result(timeout=10) == 1
        release.set()
    finally:
        workers.shutdown()


def _priority_of_this_thread() -> int:
    import os

    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not hasattr(__import__("os"), "setpriority"), reason="no per-thread priority here")
def test_the_workers_run_nicer_than_the_event_loop_by_the_setting() -> None:
    base = _priority_of_this_thread()
    lowered = ModelWorkers(2, nice=5)
    same = ModelWorkers(1)
    try:
        seen = {lowered.submit(_priority_of_this_thread).result(timeout=10) for _ in range(4)}
        assert seen == {min(19, base + 5)}
        assert same.submit(_priority_of_this_thread).result(timeout=10) == base
    finally:
        lowered.shutdown()
        same.shutdown()
    assert _priority_of_this_thread() == base  # the calling thread (the event loop) keeps its own


def test_a_worker_priority_above_the_process_is_refused() -> None:
    with pytest.raises(ValueError, match="nice must be 0 or more"):
        ModelWorkers(1, nice=-1)


def test_a_call_counts_the_clients_about_to_ask_when_more_than_the_jobs_here() -> None:
    from bridge.workers import jobs_competing_with_this_call

    workers = ModelWorkers(1, clock=lambda: 0.0)
    try:
        # The queue is empty, but three other clients have work under way: they compete.
        workers.expected_clients = lambda: 3
        assert workers.submit(jobs_competing_with_this_call).result(timeout=10) == 3
        assert workers.submit(cores_for_this_call).result(timeout=10) == 1  # not alone: one core
        workers.expected_clients = lambda: 0
        assert workers.submit(cores_for_this_call).result(timeout=10) == available_cores()
        workers.expected_clients = lambda: 1
        # The jobs waiting count when they are more (no double counting of the same clients).
        workers.expected_clients = lambda: 1
        release = _blocked(workers)
        seen = [workers.submit_by(float(k), jobs_competing_with_this_call) for k in range(1, 5)]
        release.set()
        assert [f.result(timeout=10) for f in seen] == [3, 2, 1, 1]
    finally:
        workers.shutdown()
def test_all_workers_but_one_may_make_a_long_call_at_a_time() -> None:
    from bridge.workers import claim_long_call

    assert claim_long_call() is True  # outside the workers
    workers = ModelWorkers(2, clock=lambda: 0.0)
    try:
        release = threading.Event()
        holding = threading.Event()

        def long_call() -> bool:
            granted = claim_long_call()
            again = claim_long_call()  # a job that holds it keeps it
            holding.set()
            release.wait(10)
            return granted and again

        first = workers.submit(long_call)
        assert holding.wait(10)
        # The other worker is kept for short calls while the first holds the long one.
        assert workers.submit(claim_long_call).result(timeout=10) is False
        release.set()
        assert first.result(timeout=10) is True
        # Given back when its job ended.
        assert workers.submit(claim_long_call).result(timeout=10) is True
    finally:
        workers.shutdown()
    lone = ModelWorkers(1, clock=lambda: 0.0)
    try:  # one worker has no other to keep free
        assert lone.submit(claim_long_call).result(timeout=10) is True
        assert lone.submit(claim_long_call).result(timeout=10) is True
    finally:
        lone.shutdown()
