"""The model workers: threads that run model work for all sessions, most urgent first.

A :class:`concurrent.futures.Executor`, so ``loop.run_in_executor`` works with it, plus
:meth:`ModelWorkers.submit_by`, which gives a piece of work its deadline; plain ``submit`` is due
now. Which piece runs next is :class:`bridge.scheduler.DeadlineScheduler`'s decision; this layer
only moves work between the event loop and the threads. By default there are as many workers as
the process may use cores, and each model call uses one intra-op thread (see the engines), so the
workers never fight over the cores and the scheduler's order is the order the cores work in.

The worker threads may run at a lower CPU priority than the rest of the process (``nice``): the
event loop that hands finished audio to the sockets, and anything else on the machine, then never
waits behind a model call for a core. Model work is what can wait a few milliseconds; audio that is
made but not yet sent is a gap for nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from bridge.scheduler import DeadlineScheduler


_call = threading.local()


def cores_for_this_call() -> int:
    """Cores the model call running on this thread may use: all of them while it runs alone
    (no other job running or waiting, no other client about to ask), else one. Outside the
    workers (tests, tools): all."""
    return getattr(_call, "cores", available_cores())


def jobs_competing_with_this_call() -> int:
    """Jobs that were waiting for a worker or running on another when the job running on this
    thread started, or, if more, the other utterances under way that will ask for work any
    moment (:attr:`ModelWorkers.expected_clients`); 0 outside the workers: how much work competes
    with it for the cores, and with the job that follows it in its session."""
    return getattr(_call, "competing", 0)


def claim_long_call() -> bool:
    """Whether the job running on this thread may make a long call (a large decoder chunk):
    true for all but one of the workers at a time, so that one is always back within a short
    call for whatever falls due meanwhile. Once granted it holds until the job ends. Outside
    the workers (tests, tools): always."""
    pool = getattr(_call, "pool", None)
    return True if pool is None else pool._claim_long()


def lower_this_thread_priority(nice: int) -> bool:
    """Give the calling thread ``nice`` more niceness (Linux schedules threads one by one);
    False where the platform cannot (then it runs at the process's priority)."""
    if nice <= 0:
        return False
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + nice)
    except (AttributeError, OSError):  # not on Linux, or not allowed
        return False
    return True


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(slots=True)
class _Job:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class ModelWorkers(Executor):
    """``workers`` threads taking jobs earliest deadline first."""

    def __init__(
        self,
        workers: int,
        *,
        name: str = "model",
        clock: Callable[[], float] = time.perf_counter,
        nice: int = 0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"need at least one worker, got {workers}")
        if nice < 0:
            raise ValueError(f"nice must be 0 or more (a lower priority), got {nice}")
        self.workers = workers
        #: How much lower than the process the worker threads run (0: the same priority).
        self.nice = nice
        self.clock = clock
        #: How many clients besides the caller have work under way that is not here yet (their
        #: next job comes within moments: utterances speaking or about to): a job that starts
        #: while the queue happens to be empty still counts them as competing, and is not alone
        #: (it keeps to one core). Set by the owner
        #: (the server counts its utterances); None: only the jobs here count.
        self.expected_clients: Callable[[], int] | None = None
        self._scheduler: DeadlineScheduler[_Job] = DeadlineScheduler()
        self._wake = threading.Condition()
        self._closed = False
        self._running = 0
        #: Running jobs granted a long call (:func:`claim_long_call`): at most all workers but one.
        self._long = 0
        self._cores = available_cores()
        # Not daemon threads: a daemon thread killed inside a model call at interpreter exit
        # aborts the process. Like concurrent.futures' pools, they are told to finish the work
        # in hand and stop when the interpreter starts to exit (before it joins them).
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}") for i in range(workers)]
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            register(self._interpreter_exit)
        for thread in self._threads:
            thread.start()

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return len(self._scheduler)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` as soon as nothing more urgent waits (its deadline: now)."""
        return self.submit_by(self.clock(), fn, *args, **kwargs)

    def submit_by(self, deadline: float, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` by ``deadline`` (on ``clock``'s scale), after anything due sooner."""
        future: Future[Any] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the model workers are shut down")
            self._scheduler.submit(_Job(future, fn, args, kwargs), deadline)
            self._wake.notify()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._wake:
            self._closed = True
            if cancel_futures:
                while (job := self._scheduler.pop()) is not None:
                    job.future.cancel()
            self._wake.notify_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _claim_long(self) -> bool:
        if getattr(_call, "long", False):
            return True
        with self._wake:
            if self._long >= max(1, self.workers - 1):
                return False
            self._long += 1
        _call.long = True
        return True

    def _interpreter_exit(self) -> None:
        self.shutdown(wait=False, cancel_futures=True)

    def _work(self) -> None:
        lower_this_thread_priority(self.nice)
        while True:
            with self._wake:
                while not len(self._scheduler) and not self._closed:
                    self._wake.wait()
                job = self._scheduler.pop()
                if job is None:  # closed and drained
                    return
                waiting = len(self._scheduler)
                competing = waiting + self._running  # the others running, before this one counts
                self._running += 1
            expected = self.expected_clients
            if expected is not None:
                competing = max(competing, expected())
            # Alone: nothing else here and no other client about to ask (a call spread over
            # every core would share them with the work that arrives a few ms later).
            alone = competing == 0
            try:
                if not job.future.set_running_or_notify_cancel():
                    continue  # cancelled while it waited
                _call.cores = self._cores if alone else 1
                _call.competing = competing
                _call.pool = self
                try:
                    result = job.fn(*job.args, **job.kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    job.future.set_exception(exc)
                else:
                    job.future.set_result(result)
            finally:
                with self._wake:
                    self._running -= 1
                    if getattr(_call, "long", False):
                        self._long -= 1
                _call.long = False
                _call.pool = None
                del job
