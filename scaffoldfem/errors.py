"""The one exception family of scaffoldfem, and the exit-code contract.

Every error a user can cause is a :class:`ScaffoldfemError` carrying its data and
the exit code the command line returns for it: 2 bad input or environment
(study, options, run directory, meshing), 3 a numerical failure after the last
good state was written. The CLI maps ``err.exit_code`` directly; besides it only
:func:`scaffoldfem.cli.main` decides exit codes (a file-system error or ^C raised
outside this family: 2 and 143). No DOLFINx imports here.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_NUMERICAL = 3
EXIT_INTERRUPTED = 143


def os_error_line(err: OSError, path: Any = None) -> str:
    """One line for a file-system error: the file it concerns and why
    (``/proc/x: No such file or directory``), never a traceback."""
    where = err.filename if err.filename is not None else path
    why = err.strerror or str(err) or type(err).__name__
    return f"{where}: {why}" if where is not None else why


def _rebuild(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> ScaffoldfemError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class ScaffoldfemError(Exception):
    """Base of every scaffoldfem error; ``exit_code`` is what the CLI returns.

    Instances pickle with their attributes, so rank 0 can broadcast one and
    every rank raises the same error (:func:`scaffoldfem.mpi.on_rank0`).
    """

    exit_code: int = EXIT_BAD_INPUT

    @property
    def lines(self) -> list[str]:
        """The message as the lines the CLI prints."""
        return str(self).splitlines() or [type(self).__name__]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class StudyError(ScaffoldfemError):
    """Bad study or sweep input: one human-readable line per problem."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self._lines = list(lines)

    @property
    def lines(self) -> list[str]:
        return self._lines


class UsageError(ScaffoldfemError):
    """Bad command-line use (exit 2), e.g. an unknown benchmark name."""


class RunDirError(ScaffoldfemError):
    """The run directory cannot be used as asked (exists, not a run, ...)."""


class FileSystemError(ScaffoldfemError):
    """A file or directory cannot be read or written (exit 2: the environment)."""


class GeometryBuildError(ScaffoldfemError):
    """The CAD model does not match the requested geometry (a failed boolean)."""


class MeshingError(ScaffoldfemError):
    """Meshing failed (on rank 0); raised on every rank by ``ensure_mesh``."""


class InternalError(ScaffoldfemError):
    """An unexpected error on rank 0 re-raised on the other ranks (a bug: exit 1)."""

    exit_code = EXIT_INTERNAL


class SolverError(ScaffoldfemError):
    """A solve did not converge (or produced NaN/Inf).

    Attributes:
        field: Name of the field being solved (e.g. ``"BDNF"``, ``"mechanics"``).
        time: Simulated time of the failed step (day).
        reason: PETSc's converged-reason name (or a short description).
        code: PETSc's integer reason (0 if not from PETSc).
    """

    exit_code = EXIT_NUMERICAL

    def __init__(self, field: str, time: float, reason: str, code: int = 0):
        self.field, self.time, self.reason, self.code = field, float(time), reason, int(code)
        super().__init__(f"{field}: solve failed at t = {self.time:g} day: {reason}")


class SimulationFailed(ScaffoldfemError):
    """A run could not continue (solver diverged below dt_min, NaN, negative
    concentration); the CLI exits with code 3 and this message."""

    exit_code = EXIT_NUMERICAL

    def __init__(self, field: str, time: float, reason: str):
        super().__init__(f"field '{field}' failed at t = {time:.6g} day: {reason}")
        self.field = field
        self.time = time
        self.reason = reason
