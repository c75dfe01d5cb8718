"""``scaffoldfem sweep``: run the cases of a sweep as one MPI job.

``mpiexec -n P scaffoldfem sweep SWEEP.toml --out DIR --ranks-per-case K`` runs
the cases on P/K groups of K ranks (the queue: :mod:`scaffoldfem.sweep.coordinator`;
the table: :mod:`scaffoldfem.sweep.results`). The sweep draws nothing itself: the
caller (CLI or :mod:`scaffoldfem.api`) injects the figures, ``on_case_done`` for
each case and ``on_done`` for the sweep.

Sweep directory::

    DIR/sweep.json        the plan: case ids, varied values, study hashes
    DIR/sweep.toml        copy of the sweep file
    DIR/cases.txt         one case id per line (SLURM array index → case)
    DIR/studies/<id>.toml resolved study of each case (``scaffoldfem run`` input)
    DIR/cases/<id>/       the run directory of each case (issue 5 contract)
    DIR/results.csv       one row per case: varied values + headline metrics
    DIR/results.parquet   the same table

Resume is the default: rerunning the same command skips cases with ``DONE``,
resumes cases that have a run in progress, and rewrites the row of a case
rather than adding one. One writer (world rank 0) rewrites both tables through
a temporary file and a rename after every case.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scaffoldfem
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import EXIT_NUMERICAL, EXIT_OK, RunDirError, StudyError
from scaffoldfem.files import atomic_write_json, atomic_write_text
from scaffoldfem.geometry.meshing import ensure_mesh
from scaffoldfem.mpi import on_rank0
from scaffoldfem.run.loop import run_study
from scaffoldfem.run.progress import signals_held
from scaffoldfem.run.rundir import remove_ours
from scaffoldfem.sweep.columns import parameter_column, parameter_value
from scaffoldfem.sweep.coordinator import OnDone, Runner, Todo, quiet_wait, run_groups
from scaffoldfem.sweep.plan import SweepPlan, load_sweep
from scaffoldfem.sweep.results import ResultsWriter, case_row
from scaffoldfem.sweep.slurm import check_out_path, write_slurm_scripts


@dataclass
class SweepSummary:
    """Outcome of a sweep (identical on every rank)."""

    total: int
    ran: int
    skipped: int
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (id, status, error)
    wall_s: float = 0.0
    pending: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every case is done, 3 (EXIT_NUMERICAL) when a case failed or is incomplete."""
        return EXIT_NUMERICAL if self.failures else EXIT_OK

    def lines(self) -> list[str]:
        """Human-readable summary."""
        done = self.total - len(self.failures) - self.pending
        rate = (f", {3600 * self.ran / self.wall_s:.1f} cases/hour"
                if self.ran and self.wall_s else "")
        out = [f"sweep: {done}/{self.total} cases done ({self.ran} run now, {self.skipped} "
               f"already done) in {self.wall_s:.1f} s{rate}"]
        if self.pending:
            out.append(f"  {self.pending} case(s) not run yet")
        if self.failures:
            out.append(f"  {len(self.failures)} case(s) not completed:")
            out += [f"    {cid}: {status}: {err}" for cid, status, err in self.failures]
        return out


# ---------------------------------------------------------------------------
# The directory (rank 0)


def _resolved_digest(case_dir: Path) -> str | None:
    try:
        return load_study(case_dir / "study.resolved.toml").digest()
    except StudyError:
        return None


def _check_ranks_per_case(k: int, size: int | None) -> None:
    """K >= 1 and (when running, ``size`` ranks) K divides the ranks: else exit 2."""
    if k < 1:
        raise StudyError([f"--ranks-per-case: must be >= 1 (got {k})"])
    if size is not None and size % k:
        raise StudyError([f"--ranks-per-case: must divide the {size} MPI rank(s) (got {k})"])


def _inside(out: Path, path: Path) -> Path:
    """``path`` if it resolves (symbolic links followed) to a place under ``out``."""
    real = path.resolve()
    if not real.is_relative_to(out.resolve()):
        raise RunDirError(f"{path}: resolves to {real}, outside the sweep directory {out}; "
                          "nothing of a sweep is written outside --out")
    return path


def prepare_sweep_dir(plan: SweepPlan, out: Path, overwrite: bool) -> None:
    """Create or reuse the sweep directory and write the plan (rank 0 only).

    Every case directory and study file is checked to resolve under ``out``
    (case ids are plain words; this also catches a symbolic link placed there).

    Raises:
        RunDirError: ``out`` exists and holds something other than a sweep, or a
            case path leads outside it.
        StudyError: ``out`` holds cases of a different sweep (one line per case).
    """
    if out.exists() and overwrite:
        remove_ours(out)  # only a directory scaffoldfem wrote (exit 2 otherwise)
    if out.exists():
        if not out.is_dir():
            raise RunDirError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / "sweep.json").exists():
            raise RunDirError(f"{out} exists and holds no sweep (no sweep.json); results are never "
                              "overwritten silently: choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for case in plan.cases:
        _inside(out, out / "cases" / case.id)
        _inside(out, out / "studies" / f"{case.id}.toml")
    conflicts = []
    for case in plan.cases:
        cdir = out / "cases" / case.id
        resolved = cdir / "study.resolved.toml"
        if resolved.exists():
            # Same text as the case's study: certainly the same (the cheap, usual path).
            if resolved.read_text() == case.study.to_toml():
                continue
            if _resolved_digest(cdir) != case.study.digest():
                conflicts.append(f"{case.id}: {cdir} holds a different study (was the sweep or its "
                                 "base study edited?)")
    if conflicts:
        raise StudyError([f"{out}: cannot resume: {len(conflicts)} case(s) differ from the sweep "
                          "file; use a new --out or pass --overwrite", *conflicts])
    params = []
    for key in plan.parameters:
        _, unit = parameter_value(plan.cases[0].study, key) if plan.cases else (None, "")
        params.append({"key": key, "unit": unit, "column": parameter_column(key, unit)})
    manifest = {
        "name": plan.name, "sweep_file": str(plan.path), "base": str(plan.base or ""),
        "digest": plan.digest(), "scaffoldfem": scaffoldfem.__version__,
        "parameters": params, "plot": plan.plot, "set": plan.overrides,
        "cases": [{"index": c.index, "id": c.id, "values": c.overrides,
                   "study_sha256": c.study.digest()} for c in plan.cases],
    }
    atomic_write_json(out / "sweep.json", manifest)
    atomic_write_text(out / "sweep.toml", plan.source)
    atomic_write_text(out / "cases.txt", "".join(f"{c.id}\n" for c in plan.cases))
    for case in plan.cases:
        path = out / "studies" / f"{case.id}.toml"
        text = case.study.to_toml()
        if not path.exists() or path.read_text() != text:
            atomic_write_text(path, text)


def _plan_work(plan: SweepPlan, out: Path, rows: dict[str, dict[str, Any]]
               ) -> tuple[list[Todo], list[int]]:
    """Split cases into those to run and those done without a current row."""
    todo, collect = [], []
    for pos, case in enumerate(plan.cases):
        cdir = out / "cases" / case.id
        if (cdir / "DONE").exists():
            if rows.get(case.id, {}).get("status") != "done":
                collect.append(pos)
            continue
        resume = (cdir / "study.resolved.toml").exists()
        todo.append(Todo(pos, resume=resume, overwrite=cdir.exists() and not resume))
    return todo, collect


def _start(plan: SweepPlan, out: Path, overwrite: bool) -> tuple[ResultsWriter, list[Todo]]:
    """Rank 0: prepare the directory, load the table, add rows of cases done unrecorded."""
    prepare_sweep_dir(plan, out, overwrite)
    ids = {c.id for c in plan.cases}
    writer = ResultsWriter(out, plan, {k: v for k, v in ResultsWriter.load(out).items()
                                       if k in ids})
    todo, collect = _plan_work(plan, out, writer.rows)
    for pos in collect:  # done before a kill, row not yet written: no recompute
        row = case_row(plan, pos, out / "cases" / plan.cases[pos].id, exit_code=0, error=None,
                       wall_s=math.nan, ranks=0)
        row["wall_s"] = row.get("timing_s.total", math.nan)
        row["ranks"] = row.get("mesh.ranks", math.nan)
        writer.rows[row["case_id"]] = row
    writer.write()
    return writer, todo


def _premesh(plan: SweepPlan, todo: list[Todo], comm: Any) -> None:
    """Mesh every distinct geometry once, on all ranks, before the groups start, so
    that concurrent groups never mesh (and write) the same cached file at once."""
    seen: set[str] = set()
    for t in todo:
        geometry = plan.cases[t.pos].study.geometry
        key = geometry.geometry_hash()
        if key not in seen:
            seen.add(key)
            try:
                ensure_mesh(geometry, comm)
            except Exception as err:  # raised on every rank; the cases will fail one by one
                if comm.rank == 0:
                    print(f"warning: meshing failed, its cases will fail: {err}", flush=True)


# ---------------------------------------------------------------------------
# Entry points


def run_sweep(plan: SweepPlan, out: Path, comm: Any, *, ranks_per_case: int = 1,
              runner: Runner | None = None, overwrite: bool = False, collect_only: bool = False,
              quiet: bool = False, poll: float = 0.05, on_case_done: OnDone | None = None,
              on_done: Callable[[Path], None] | None = None) -> SweepSummary:
    """Run (or resume) every case of ``plan`` into ``out`` on ``comm``.

    Args:
        plan: The validated sweep (identical on every rank).
        out: Sweep directory.
        comm: The world communicator of the sweep (collective call).
        ranks_per_case: K, ranks per case; must divide ``comm.size``.
        runner: Runs one case (see :class:`~scaffoldfem.sweep.coordinator.Runner`);
            None = :func:`scaffoldfem.run.loop.run_study` (and meshes are made up front).
        overwrite: Delete ``out`` first.
        collect_only: Run nothing; only (re)build the results tables from the case
            directories (used after a SLURM job array).
        quiet: No per-case progress lines.
        poll: Seconds between polls of rank 0's coordinator.
        on_case_done: Given to the runner as ``on_done``: called with the case
            directory and the case's communicator, on its ranks, before its ``DONE``
            (the case figures).
        on_done: Called with ``out`` on world rank 0 once the tables are final,
            unless ``collect_only`` (the sweep figures); an error there is a warning.

    Returns:
        The summary, the same on every rank.

    Raises:
        StudyError: ``ranks_per_case`` does not divide the ranks, or the directory
            holds cases of a different sweep.
        RunDirError: ``out`` exists and is not a sweep directory.
    """
    size, rank = comm.size, comm.rank
    _check_ranks_per_case(ranks_per_case, size)
    out = Path(out).resolve()
    t_start = time.perf_counter()

    # Rank 0 prepares the directory and decides what is left to do; every rank
    # raises the same error if it cannot. The writer stays on rank 0.
    kept: dict[str, ResultsWriter] = {}

    def start() -> list[Todo]:
        try:
            kept["writer"], todo = _start(plan, out, overwrite)
        except OSError as err:  # e.g. no permission: every rank must hear of it, not hang
            raise RunDirError(f"{out}: {err}") from None
        return todo

    todo: list[Todo] = on_rank0(comm, start)
    writer = kept.get("writer")

    say = (lambda msg: print(msg, flush=True)) if rank == 0 and not quiet else (lambda msg: None)
    n_skip = len(plan.cases) - len(todo)
    if collect_only:
        todo = []
    else:
        say(f"sweep {plan.name}: {len(plan.cases)} cases, {n_skip} already done, {len(todo)} to "
            f"run on {size // ranks_per_case} group(s) of {ranks_per_case} rank(s)")
    if todo and runner is None:
        _premesh(plan, todo, comm)
        runner = run_study

    finished = [0]
    row_lock = threading.Lock()  # rows arrive from rank 0's own group and its coordinator thread

    def on_row(row: dict[str, Any]) -> None:
        assert writer is not None
        with row_lock:
            writer.add(row)
            finished[0] += 1
            say(f"[{finished[0]}/{len(todo)}] {row['case_id']}: {row['status']} in "
                f"{row['wall_s']:.1f} s on {row['ranks']} rank(s)"
                + (f" ({row['error']})" if row["error"] else ""))

    if todo:
        assert runner is not None
        with signals_held():  # between cases as in a case; the caller's handlers after
            run_groups(plan, todo, out, comm, ranks_per_case, runner, on_row, poll,
                       on_case_done)

    # Every rank leaves together, without spinning while the last cases finish.
    quiet_wait(comm.Ibarrier(), poll)
    summary = None
    if rank == 0:
        assert writer is not None
        summary = _finish(plan, writer, ran=len(todo), skipped=n_skip,
                          wall_s=time.perf_counter() - t_start)
        if on_done is not None and not collect_only:
            try:
                on_done(out)
            except Exception as err:  # a picture must never fail a finished sweep
                print(f"warning: sweep figures not drawn: {type(err).__name__}: {err}",
                      flush=True)
    quiet_wait(comm.Ibarrier(), poll)  # the others wait quietly while rank 0 draws
    return comm.bcast(summary, root=0)


def _finish(plan: SweepPlan, writer: ResultsWriter, *, ran: int, skipped: int,
            wall_s: float) -> SweepSummary:
    """Rank 0: the final tables and the summary."""
    writer.write()
    failures = [(r["case_id"], r["status"], str(r.get("error") or ""))
                for r in writer.frame().to_dict("records") if r["status"] != "done"]
    pending = sum(1 for c in plan.cases if c.id not in writer.rows)  # never run yet
    return SweepSummary(total=len(plan.cases), ran=ran, skipped=skipped, failures=failures,
                        wall_s=wall_s, pending=pending)


def load_sweep_mpi(comm: Any, path: Path, overrides: list[str] | tuple[str, ...] = ()) -> SweepPlan:
    """:func:`load_sweep` on rank 0, the plan (or the error lines) broadcast."""
    return on_rank0(comm, lambda: load_sweep(path, overrides))


def write_slurm(plan: SweepPlan, out: Path, comm: Any, *, ranks_per_case: int = 1,
                overwrite: bool = False) -> list[Path]:
    """Prepare ``out`` (plan, case studies) and write its SLURM scripts on rank 0.

    Returns:
        The scripts written (allocation script, job-array script), on every rank.

    Raises:
        StudyError, RunDirError: As :func:`prepare_sweep_dir`, on every rank.
    """
    _check_ranks_per_case(ranks_per_case, None)  # before anything is written

    def write() -> list[Path]:
        out_abs = Path(out).resolve()
        check_out_path(out_abs)
        prepare_sweep_dir(plan, out_abs, overwrite)
        return write_slurm_scripts(plan, out_abs, ranks_per_case=ranks_per_case)

    return on_rank0(comm, write)
