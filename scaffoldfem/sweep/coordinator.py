"""The dynamic case queue of a sweep: groups of K ranks take cases until none is left.

COMM_WORLD is split into G = P/K groups (``comm.Split``); each group runs one case
at a time on its own sub-communicator. World rank 0 keeps the queue and hands out
case indices to the group leaders by point-to-point messages on a duplicate of
the world communicator, so fast and slow cases balance. Rank 0 also computes in
group 0: its coordinator is a thread that polls (``Iprobe`` + sleep, not a
spinning blocking receive) while the main thread runs cases, which needs
``MPI_THREAD_MULTIPLE``; without it rank 0 answers between its own cases. No
spawn, no ``MPIPoolExecutor`` (often missing on clusters): only communicator
splits, point-to-point messages and collectives.
"""

from __future__ import annotations

import gc
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mpi4py import MPI

from scaffoldfem.config.study import Study
from scaffoldfem.errors import EXIT_INTERNAL, ScaffoldfemError
from scaffoldfem.files import atomic_write_text
from scaffoldfem.sweep.plan import SweepPlan
from scaffoldfem.sweep.results import case_row

_TAG_READY = 11  # leader → rank 0: (row of the finished case or None)
_TAG_TASK = 12  # rank 0 → leader: (case position, resume, overwrite) or None

#: A callback on a finished case directory: (directory, communicator), collective.
OnDone = Callable[[Path, Any], None]


class Runner(Protocol):
    """What runs one case: :func:`scaffoldfem.run.loop.run_study` or a test double.

    Collective over ``comm``; returns the exit code (0 = done) or raises a
    :class:`~scaffoldfem.errors.ScaffoldfemError`. ``on_done(out, comm)`` is called
    on every rank before ``DONE`` when the study asks for figures.
    """

    def __call__(self, study: Study, out: Path, comm: Any, *, resume: bool, overwrite: bool,
                 quiet: bool, on_done: OnDone | None) -> int: ...


@dataclass
class Todo:
    """A case to run: position in the plan and the run-directory flags."""

    pos: int
    resume: bool
    overwrite: bool


def run_case(plan: SweepPlan, todo: Todo, out: Path, group: Any, runner: Runner,
             on_done: OnDone | None) -> dict[str, Any] | None:
    """Run one case on ``group`` (collective); return its row on the group leader.

    A failing case is recorded (its exit code, the first line of the error, the
    traceback in ``sweep_error.txt``); the sweep goes on.
    """
    case = plan.cases[todo.pos]
    cdir = out / "cases" / case.id
    t0 = time.perf_counter()
    err_text, tb = None, ""
    try:
        code = int(runner(case.study, cdir, group, resume=todo.resume, overwrite=todo.overwrite,
                          quiet=True, on_done=on_done))
    except Exception as err:  # a failing case is recorded, the sweep goes on
        code = err.exit_code if isinstance(err, ScaffoldfemError) else EXIT_INTERNAL
        err_text = f"{type(err).__name__}: {err}".splitlines()[0][:500]
        tb = traceback.format_exc()
    gc.collect()  # PETSc objects of the case must be destroyed collectively, now
    wall = time.perf_counter() - t0
    # All ranks of the group agree on the outcome (the leader may not be the rank that failed).
    codes = group.allgather((code, err_text, tb))
    code = max(c for c, _, _ in codes)
    err_text = next((e for _, e, _ in codes if e), None)
    tb = next((t for _, _, t in codes if t), "")
    if group.rank != 0:
        return None
    if tb:
        cdir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cdir / "sweep_error.txt", tb)
    if code != 0 and err_text is None:
        err_text = f"exit code {code}"
    return case_row(plan, todo.pos, cdir, exit_code=code, error=err_text, wall_s=wall,
                    ranks=group.size)


class Coordinator:
    """World rank 0: the queue of cases and the answers to group leaders."""

    def __init__(self, ctl: Any, todo: list[Todo], n_remote: int,
                 on_row: Callable[[dict[str, Any]], None], poll: float):
        self.ctl = ctl
        self.todo = list(todo)
        self.lock = threading.Lock()
        self.remote = n_remote
        self.on_row = on_row
        self.poll = poll

    def take(self) -> Todo | None:
        """The next case, or None when the queue is empty."""
        with self.lock:
            return self.todo.pop(0) if self.todo else None

    def serve_pending(self) -> None:
        """Answer every request waiting now (non-blocking)."""
        status = MPI.Status()
        while self.remote and self.ctl.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_READY, status=status):
            src = status.Get_source()
            row = self.ctl.recv(source=src, tag=_TAG_READY)
            if row is not None:
                self.record(row)
            task = self.take()
            self.ctl.send(None if task is None else (task.pos, task.resume, task.overwrite),
                          dest=src, tag=_TAG_TASK)
            if task is None:
                self.remote -= 1

    def record(self, row: dict[str, Any] | None) -> None:
        """Hand a row to the writer; a failure to write is reported, never fatal."""
        if row is None:
            return
        try:
            self.on_row(row)
        except Exception as err:  # e.g. a full disk: keep serving, or every group would hang
            print(f"warning: cannot write the row of {row.get('case_id')}: {err}", flush=True)

    def serve_until_done(self) -> None:
        """Answer requests until every remote leader has been told to stop."""
        while self.remote:
            self.serve_pending()
            if self.remote:
                time.sleep(self.poll)


def quiet_wait(req: Any, poll: float) -> None:
    """Wait for a request without spinning (MPI waits busy-poll a core)."""
    while not req.Test():
        time.sleep(poll)


def run_groups(plan: SweepPlan, todo: list[Todo], out: Path, comm: Any, k: int, runner: Runner,
               on_row: Callable[[dict[str, Any]], None], poll: float,
               on_case_done: OnDone | None = None) -> None:
    """Run ``todo`` on groups of ``k`` ranks of ``comm`` (collective).

    Args:
        plan: The sweep.
        todo: Cases to run, in queue order.
        out: Sweep directory.
        comm: World communicator of the sweep.
        k: Ranks per case (divides ``comm.size``).
        runner: Runs one case.
        on_row: Called on world rank 0 with the row of every finished case.
        poll: Seconds between polls of the coordinator.
        on_case_done: Passed to ``runner`` as ``on_done`` (the case figures).
    """
    rank = comm.rank
    group = comm.Split(color=rank // k, key=rank)
    ctl = comm.Dup()  # coordination messages never mix with anything else on COMM_WORLD
    n_groups = comm.size // k
    try:
        if rank == 0:
            coord = Coordinator(ctl, todo, n_groups - 1, on_row, poll)
            thread = None
            if n_groups > 1 and MPI.Query_thread() == MPI.THREAD_MULTIPLE:
                thread = threading.Thread(target=coord.serve_until_done, daemon=True,
                                          name="sweep-coordinator")
                thread.start()
            while True:
                if thread is None:
                    coord.serve_pending()  # no threads: answer others between own cases
                task = coord.take()
                group.bcast(None if task is None else (task.pos, task.resume, task.overwrite))
                if task is None:
                    break
                coord.record(run_case(plan, task, out, group, runner, on_case_done))
            if thread is not None:
                thread.join()
            else:
                coord.serve_until_done()
        else:
            row = None
            while True:
                if group.rank == 0:
                    ctl.send(row, dest=0, tag=_TAG_READY)
                    req = ctl.irecv(source=0, tag=_TAG_TASK)
                    while True:
                        done, msg = req.test()
                        if done:
                            break
                        time.sleep(poll / 5)
                    msg = group.bcast(msg)
                else:
                    msg = group.bcast(None)
                if msg is None:
                    break
                row = run_case(plan, Todo(*msg), out, group, runner, on_case_done)
    finally:
        ctl.Free()
        group.Free()
