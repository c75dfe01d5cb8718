"""The run directory: what may be created, continued or deleted (rank 0 decides;
atomic writes in :mod:`scaffoldfem.files`).

* A new run needs ``out`` absent or empty (a directory holding only the marker of a
  run that never got past its start counts as empty).
* ``--overwrite`` deletes only a directory scaffoldfem made (:func:`is_ours`): one
  with our ``run.json`` marker, a run of an older version (``provenance.json``
  naming scaffoldfem, or nothing but run-directory files), a sweep directory
  (``sweep.json`` naming scaffoldfem) or an empty one. :func:`remove_ours` is the
  one deletion, for runs and sweeps alike.
* ``--resume`` continues only the same run: the study (key by key, except
  :data:`~scaffoldfem.run.identity.SAFE_ON_RESUME`) and the mesh must match what
  the run recorded; a finished run is left untouched.

Every refusal is a :class:`~scaffoldfem.errors.RunDirError` (exit 2) naming the
path or the keys, raised on every rank.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scaffoldfem.config.study import Study
from scaffoldfem.errors import RunDirError, os_error_line
from scaffoldfem.files import atomic_write_json, atomic_write_text
from scaffoldfem.mpi import on_rank0
from scaffoldfem.run import identity as ident
from scaffoldfem.run import provenance as prov

#: Top-level names of a run directory (the contract of :mod:`scaffoldfem.run.writer`).
RUN_ENTRIES = frozenset({
    ident.RUN_FILE, ident.STUDY_FILE, "provenance.json", "fields", "checkpoints", "axons.vtp",
    "axons_crossing.csv", "timeseries.csv", "regions.csv", "centerline.csv", "metrics.json",
    "figures", "DONE",
})


@dataclass(frozen=True)
class RunDirState:
    """What :func:`prepare_run_dir` found.

    Attributes:
        resume: An existing run is continued (from its newest valid checkpoint).
        done: The run is finished; nothing is to be done (nothing was changed).
        notes: Lines to announce on rank 0 (always, ``--quiet`` or not).
        changed: Keys of :data:`~scaffoldfem.run.identity.SAFE_ON_RESUME` that differ.
    """

    resume: bool = False
    done: bool = False
    notes: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()


def _only_marker(names: set[str]) -> bool:
    return not names or names == {ident.RUN_FILE}


def _is_run_entry(name: str) -> bool:
    # Hidden names are the temporary files of an atomic write of a contract file.
    return name in RUN_ENTRIES or (name.startswith(".") and
                                   any(name[1:].startswith(e) for e in RUN_ENTRIES))


def is_ours(path: Path | str) -> bool:
    """True if ``path`` is a directory scaffoldfem made (run or sweep), or empty.

    Args:
        path: A directory (a file or symbolic link is never ours).
    """
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    names = {p.name for p in path.iterdir()}
    if not names or ident.read_identity(path) is not None:
        return True
    provenance = ident.read_json(path / "provenance.json") or {}
    if isinstance(provenance.get("versions"), dict) and "scaffoldfem" in provenance["versions"]:
        return True
    if "scaffoldfem" in (ident.read_json(path / "sweep.json") or {}):
        return True
    # A run of an older version that never finished: nothing but run-directory files.
    return ident.STUDY_FILE in names and all(_is_run_entry(n) for n in names)


def remove_ours(path: Path | str) -> None:
    """Delete ``path`` (``--overwrite``) if scaffoldfem made it; call on rank 0 only.

    Raises:
        RunDirError: ``path`` is a file, a symbolic link, or a directory scaffoldfem
            did not make; nothing is deleted.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        kind = "a symbolic link" if path.is_symlink() else "not a directory"
        raise RunDirError(f"--overwrite: {path} is {kind}; only directories scaffoldfem "
                          "made are deleted (nothing was deleted)")
    if not is_ours(path):
        raise RunDirError(f"--overwrite: {path} was not made by scaffoldfem (no {ident.RUN_FILE} "
                          "or sweep.json of ours in it); nothing was deleted: remove it "
                          "yourself or choose another --out")
    try:
        shutil.rmtree(path)
    except OSError as err:
        raise RunDirError(f"--overwrite: cannot delete {os_error_line(err, path)}") from None


def check_creatable(out: Path, what: str = "the run directory") -> None:
    """Raise RunDirError unless ``out`` can be created (a probe directory is made and
    removed in its nearest existing parent, which catches read-only file systems,
    ``/proc`` and missing permissions alike, for root too).

    Args:
        out: The path to create.
        what: What it is, for the message.
    """
    parent = Path(out).absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise RunDirError(f"{out}: cannot create {what}: {parent} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".scaffoldfem-probe-"))
    except OSError as err:
        raise RunDirError(f"{out}: cannot create {what} in {parent}: "
                          f"{err.strerror or err}") from None


def inspect_run_dir(out: Path | str, study: Study | None = None, *, resume: bool,
                    overwrite: bool) -> RunDirState:
    """Decide what a run into ``out`` may do, changing nothing (rank 0 only).

    Args:
        out: The run directory.
        study: The study to run (None: the caller has compared it, e.g. a sweep).
        resume: Continue the run in ``out``.
        overwrite: Replace ``out`` (only if scaffoldfem made it).

    Raises:
        RunDirError: One line naming the path or the differing keys.
    """
    out = Path(out)
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other")
    if not out.exists():
        if resume:
            raise RunDirError(f"{out} does not exist: nothing to resume")
        check_creatable(out)
        return RunDirState()
    if not out.is_dir():
        raise RunDirError(f"{out} exists and is not a directory")
    if overwrite:
        if not is_ours(out):
            remove_ours(out)  # not ours: raises the refusal naming the path
        return RunDirState()
    names = {p.name for p in out.iterdir()}
    if not resume:
        if not _only_marker(names):
            raise RunDirError(
                f"{out} already exists; results are never overwritten silently: "
                "pass --resume to continue that run or --overwrite to replace it")
        return RunDirState()
    if ident.STUDY_FILE not in names:
        if names == {ident.RUN_FILE}:  # stopped before anything was computed
            return RunDirState(notes=(f"{out}: nothing was computed yet: starting from t = 0",))
        raise RunDirError(f"{out} holds no run to resume (no {ident.STUDY_FILE})")
    return _resume_state(out, study)


def _resume_state(out: Path, study: Study | None) -> RunDirState:
    old = ident.read_resolved(out)
    if old is None:
        raise RunDirError(f"{out / ident.STUDY_FILE}: cannot be read: nothing to resume")
    refused, allowed = ident.study_differences(old, study.to_dict()) if study else ([], [])
    if refused:
        raise RunDirError(f"--resume: study differs from the run's in: {ident.name_keys(refused)}"
                          " (use another --out, or --overwrite to start again)")
    if (out / "DONE").exists():
        if any(k in ident.EXTEND_ON_RESUME for k in allowed):
            raise RunDirError(f"--resume: {out} is finished (DONE); a finished run is not "
                              "extended: run the longer study into another --out")
        return RunDirState(done=True, notes=(
            f"{out}: the run is already finished (DONE); nothing to resume, nothing changed",))
    notes = (ident.code_change(ident.read_identity(out)),)
    return RunDirState(resume=True, changed=tuple(allowed), notes=tuple(n for n in notes if n))


def prepare_run_dir(out: Path | str, study: Study | None = None, *, resume: bool,
                    overwrite: bool) -> RunDirState:
    """Create, replace or reuse ``out`` as :func:`inspect_run_dir` allows (rank 0 only).

    A new directory gets its marker (``run.json``) before anything else, then the
    resolved study (if ``study`` is given).

    Raises:
        RunDirError: As :func:`inspect_run_dir`, or a file-system error naming ``out``.
    """
    out = Path(out)
    try:
        state = inspect_run_dir(out, study, resume=resume, overwrite=overwrite)
        if state.resume or state.done:
            return state
        if overwrite:
            remove_ours(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / ident.RUN_FILE, ident.new_identity(study))
        if study is not None:
            atomic_write_text(out / ident.STUDY_FILE, study.to_toml())
    except OSError as err:
        raise RunDirError(f"cannot create the run directory: {os_error_line(err, out)}") from None
    return state


def prepare_run_dir_mpi(out: Path | str, comm: Any, *, resume: bool, overwrite: bool,
                        study: Study | None = None) -> RunDirState:
    """:func:`prepare_run_dir` on rank 0; every rank gets its result or its error."""
    return on_rank0(comm, lambda: prepare_run_dir(out, study, resume=resume,
                                                  overwrite=overwrite), wrap=RunDirError)


def inspect_run_dir_mpi(out: Path | str, comm: Any, *, resume: bool, overwrite: bool,
                        study: Study | None = None) -> RunDirState:
    """:func:`inspect_run_dir` on rank 0 (the CLI's check before loading DOLFINx)."""
    return on_rank0(comm, lambda: inspect_run_dir(out, study, resume=resume,
                                                  overwrite=overwrite), wrap=RunDirError)


def record_mesh(out: Path, state: RunDirState, study: Study, mesh_path: Path) -> None:
    """Record the mesh of a new run, or check it on resume (rank 0 only).

    On resume the mesh must hash as recorded; then the resume is recorded and, if
    safe keys changed, ``study.resolved.toml`` takes their new values. Nothing is
    written before every check has passed.

    Raises:
        RunDirError: The mesh differs from the run's.
    """
    try:
        _record_mesh(out, state, study, mesh_path)
    except OSError as err:
        raise RunDirError(f"cannot write the run directory: {os_error_line(err, out)}") from None


def _record_mesh(out: Path, state: RunDirState, study: Study, mesh_path: Path) -> None:
    sha = prov.file_sha256(mesh_path)
    record = ident.read_identity(out)
    if state.resume:
        legacy = ident.read_json(out / "provenance.json") or {}
        recorded = (record or {}).get("mesh_sha256") or legacy.get("mesh_sha256")
        if recorded and recorded != sha:
            raise RunDirError(f"--resume: the mesh differs from the run's ({mesh_path} is not the "
                              f"mesh recorded in {out / ident.RUN_FILE}); use another --out, or "
                              "--overwrite to start again")
        record = record or {**ident.new_identity(study), "adopted": True}
        record.setdefault("resumes", []).append({"at": prov.now(), "changed": list(state.changed)})
        if state.changed:
            atomic_write_text(out / ident.STUDY_FILE, study.to_toml())
            record["study_sha256"] = study.digest()
    record = record or ident.new_identity(study)
    record.update(mesh_file=str(mesh_path), mesh_sha256=sha)
    atomic_write_json(out / ident.RUN_FILE, record)


def record_mesh_mpi(out: Path, state: RunDirState, study: Study, mesh_path: Path,
                    comm: Any) -> None:
    """:func:`record_mesh` on rank 0; every rank raises its error."""
    on_rank0(comm, lambda: record_mesh(Path(out), state, study, Path(mesh_path)),
             wrap=RunDirError)
