"""The progress line and messages of a run (rank 0), and the stop-on-signal flag."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from mpi4py import MPI

#: The signals that ask a run to checkpoint and stop.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: Seconds between progress lines when not on a terminal (batch logs).
LOG_EVERY_S = 30.0


class Progress:
    """Progress line (``\\r``-updated on a terminal, every :data:`LOG_EVERY_S` in a log).

    SIGTERM/SIGINT set a flag instead of killing the run; :meth:`stop_requested`
    agrees on it across ranks so the loop can checkpoint and stop.

    Args:
        comm: Communicator of the run.
        duration: Simulated duration (day), for the ETA.
        quiet: No progress line and no messages.
    """

    def __init__(self, comm: Any, duration: float, quiet: bool = False):
        self.comm, self.duration, self.quiet = comm, duration, quiet
        self.rank0 = comm.rank == 0
        self.wall0 = time.perf_counter()
        self._last_log = -math.inf
        self._signal = False
        #: The handlers before the run's, put back by :meth:`restore_signals`.
        self._previous: dict[int, Any] = {}
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not in the main thread (tests)
                pass

    def restore_signals(self) -> None:
        """Put back the handlers the run replaced: after ``api.run`` in a Python
        session (a notebook), ^C interrupts again instead of setting a stale flag.
        Inside :func:`signals_held` (a sweep) they stay until the sweep ends."""
        if not _HELD[0]:
            _restore(self._previous)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = True

    def stop_requested(self) -> bool:
        """True on every rank if a signal reached any rank (collective)."""
        return bool(self.comm.allreduce(int(self._signal), op=MPI.MAX))

    def wall(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self.wall0

    def line(
        self, t: float, dt: float, iters: Mapping[str, int], crossed: int, force: bool = False
    ) -> None:
        """Print the progress line (rank 0), unless printed less than a period ago."""
        if self.quiet or not self.rank0:
            return
        now = time.perf_counter()
        tty = sys.stdout.isatty()
        if not force and not tty and now - self._last_log < LOG_EVERY_S:
            return
        self._last_log = now
        wall = now - self.wall0
        eta = wall * (self.duration - t) / t if t > 0 else float("nan")
        its = " ".join(f"{k}:{v}" for k, v in iters.items())
        text = (
            f"day {t:7.2f}/{self.duration:g}  dt {dt:.3g}  its [{its}]  crossed {crossed}"
            f"  wall {wall:6.0f}s  eta {eta:6.0f}s"
        )
        print("\r" + text if tty else text, end="" if tty else "\n", flush=True)

    def end(self) -> None:
        """Finish the ``\\r`` line on a terminal."""
        if self.rank0 and not self.quiet and sys.stdout.isatty():
            print()

    def announce(self, msg: str) -> None:
        """A message on rank 0 that ``--quiet`` does not silence (a restart from t = 0)."""
        if self.rank0:
            print(("\n" if sys.stdout.isatty() else "") + msg, flush=True)

    def log(self, msg: str) -> None:
        """A message on rank 0 (warnings from other ranks go through Python logging)."""
        if self.rank0 and not self.quiet:
            print(("\n" if sys.stdout.isatty() else "") + msg, flush=True)


#: > 0 while a sweep holds the runs' handlers (:func:`signals_held`).
_HELD = [0]


def _restore(handlers: dict[int, Any]) -> None:
    for sig, handler in handlers.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """A sweep's cases keep their runs' SIGTERM/SIGINT handlers between cases (a rank
    between cases is not killed by the scheduler's early SIGTERM while the others
    checkpoint); the handlers from before the sweep come back when it ends."""
    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    _HELD[0] += 1
    try:
        yield
    finally:
        _HELD[0] -= 1
        if not _HELD[0]:
            _restore(saved)
