"""Periodic duties run by exactly one instance at a time (see :mod:`core.locks`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from core.locks import SingletonLock

log = logging.getLogger("timbrado.scheduler")


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    name: str
    interval_seconds: float
    run: Callable[[], Awaitable[None]]


async def _sleep_or(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def hold_and_run(
    lock: SingletonLock,
    body: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    *,
    poll_seconds: float = 5.0,
) -> None:
    """Wait for the lock, run ``body`` while it is held, start over if it is lost.

    ``body`` receives an event that is set when it must stop (shutdown or lock lost).
    """
    while not stop.is_set():
        try:
            acquired = await lock.try_acquire()
        except Exception as exc:  # the database may be down: try again later
            log.warning("could not take the %s lock: %s", lock.name, type(exc).__name__)
            acquired = False
        if not acquired:
            await _sleep_or(stop, poll_seconds)
            continue
        log.info("this instance now runs %s", lock.name)
        halt = asyncio.Event()
        runner: asyncio.Task[None] = asyncio.create_task(body(halt))
        try:
            while not stop.is_set() and not runner.done():
                await _sleep_or(stop, poll_seconds)
                if not await lock.still_held():
                    log.warning("lost the %s lock; stopping that duty", lock.name)
                    break
        finally:
            halt.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(runner, 30)
            if not runner.done():
                runner.cancel()
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                log.error("%s stopped with an error: %r", lock.name, runner.exception())
            await lock.release()


class Scheduler:
    """Runs each task every ``interval_seconds`` (first run right after taking the duty)."""

    def __init__(self, tasks: Sequence[PeriodicTask], *, tick_seconds: float = 1.0) -> None:
        self.tasks = list(tasks)
        self.tick_seconds = tick_seconds
        self.runs: dict[str, int] = {t.name: 0 for t in self.tasks}

    async def run(self, halt: asyncio.Event) -> None:
        next_due = {t.name: 0.0 for t in self.tasks}
        while not halt.is_set():
            now = time.monotonic()
            for task in self.tasks:
                if now >= next_due[task.name]:
                    next_due[task.name] = now + task.interval_seconds
                    try:
                        await task.run()
                        self.runs[task.name] += 1
                    except Exception:
                        log.exception("scheduled task %s failed", task.name)
            await _sleep_or(halt, self.tick_seconds)
