"""Atomic file writes (rank 0 only): a temporary file in the same directory and an
``os.replace``, so a killed run never leaves a half-written file. The result gets
the mode an ordinary ``open`` would give it (the umask is honoured). And the one
tolerant reader of the JSON objects a run or sweep writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scaffoldfem.errors import os_error_line

__all__ = ["BackgroundWrites", "atomic_write_bytes", "atomic_write_json", "atomic_write_text",
           "atomic_write_with", "os_error_line", "read_json_object"]


def read_json_object(path: Path | str) -> dict[str, Any]:
    """The JSON object in ``path``, or {} when the file is absent, unreadable or not
    an object (a run or sweep still being written, or killed)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _named(err: OSError, path: Path) -> OSError:
    """``err`` naming ``path`` instead of the temporary file nobody asked for."""
    return type(err)(err.errno, err.strerror, str(path)) if err.errno else err


def _mkstemp(path: Path, prefix: str, suffix: str) -> tuple[int, str]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    except OSError as err:
        raise _named(err, path) from None


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and a rename.

    Raises:
        OSError: Naming ``path`` (not the temporary file) when it cannot be written.
    """
    path = Path(path)
    fd, tmp = _mkstemp(path, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float) + "\n")


def atomic_write_with(path: Path | str, writer: Callable[[Path], Any]) -> None:
    """Atomic write for writers that need a file name (e.g. ``gmsh.write``): ``writer``
    writes a unique temporary sibling (same suffix), which is then renamed."""
    path = Path(path)
    fd, tmp = _mkstemp(path, f".{path.stem}.", path.suffix)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class BackgroundWrites:
    """One worker thread that does a process's large writes in order (rank 0's
    checkpoints), so that the other ranks need not wait for its disk.

    One job is in flight at a time: :meth:`submit` first waits for the previous one
    (its memory is then free, and its error is raised here, on the next submit, or
    by :meth:`wait`). A job must own its data (the caller may change its own after
    submitting). :meth:`wait` before anything that must follow the writes (``DONE``,
    the exit after a signal); each job is atomic on its own (a temporary file and a
    rename), so a killed process still leaves only whole files.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` on the worker once the previous job is done."""
        self.wait()
        if self._pool is None:  # the thread starts with the first job
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="scaffoldfem-write")
        self._pending = self._pool.submit(job)

    def wait(self) -> None:
        """Block until the submitted job is done; raise its error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """:meth:`wait`, then stop the worker."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
