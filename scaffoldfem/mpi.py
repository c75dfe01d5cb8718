"""MPI helpers that hide the communicator from callers (no DOLFINx imports)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from scaffoldfem.errors import FileSystemError, InternalError, ScaffoldfemError, os_error_line


def _idle_until_rank0_done(comm: Any) -> None:
    """Non-root ranks poll a non-blocking barrier instead of spinning in a collective
    (rank 0 may mesh for minutes; a spinning wait would steal its cores)."""
    req = comm.Ibarrier()
    if comm.rank == 0:
        req.Wait()
        return
    while not req.Test():
        time.sleep(0.02)


def on_rank0(
    comm: Any, fn: Callable[[], Any], *, wrap: type[ScaffoldfemError] = InternalError
) -> Any:
    """Run ``fn`` on rank 0 only and return its (picklable) result on every rank.

    A :class:`~scaffoldfem.errors.ScaffoldfemError` raised on rank 0 is raised on
    every rank unchanged, an ``OSError`` becomes a
    :class:`~scaffoldfem.errors.FileSystemError` (exit 2) naming the path, any
    other exception becomes ``wrap`` with its message, so no rank hangs waiting
    for a rank that failed.

    Args:
        comm: Communicator, or None to call ``fn`` directly.
        fn: The work (no collectives inside).
        wrap: Error class for unexpected exceptions.
    """
    if comm is None:
        return fn()
    result: tuple[str, Any] = ("", None)
    if comm.rank == 0:
        try:
            result = ("ok", fn())
        except ScaffoldfemError as err:
            result = ("error", err)
        except OSError as err:  # the environment, not a bug: exit 2 naming the path
            result = ("error", FileSystemError(os_error_line(err)))
        except Exception as err:  # re-raised on every rank below
            result = ("error", wrap(f"{type(err).__name__}: {err}"))
    _idle_until_rank0_done(comm)
    status, value = comm.bcast(result, root=0)
    if status == "error":
        raise value
    return value


def say(comm: Any, *lines: str, err: bool = False) -> None:
    """Print ``lines`` once (rank 0), to stderr if ``err``."""
    if comm is None or comm.rank == 0:
        print(*lines, sep="\n", file=sys.stderr if err else sys.stdout, flush=True)
