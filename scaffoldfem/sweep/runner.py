"""``scaffoldfem sweep``: run the cases of a sweep as one MPI job.

``mpiexec -n P scaffoldfem sweep SWEEP.toml --out DIR --ranks-per-case K``
splits COMM_WORLD into G = P/K groups (``comm.Split``); each group runs one case
at a time on its own sub-communicator. World rank 0 keeps the queue and hands
out case indices to the group leaders by point-to-point messages, so fast and
slow cases balance. Rank 0 also computes in group 0: its coordinator is a
thread that polls (``Iprobe`` + sleep, not a spinning blocking receive) while the
main thread runs cases, which needs ``MPI_THREAD_MULTIPLE``; without it rank 0
answers between its own cases. No spawn, no ``MPIPoolExecutor`` (often missing on
clusters): only communicator splits, point-to-point messages and collectives.

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

import argparse
import gc
import importlib
import importlib.util
import json
import math
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scaffoldfem
from scaffoldfem.errors import EXIT_BAD_INPUT, EXIT_NUMERICAL, EXIT_OK, RunDirError, StudyError
from scaffoldfem.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from scaffoldfem.mpi import on_rank0
from scaffoldfem.sweep.plan import SweepPlan, load_sweep, parameter_column, parameter_value

Runner = Callable[..., int]

EXIT_CASES_FAILED = EXIT_NUMERICAL  # some cases failed (their rows say why)

_TAG_READY = 11  # leader → rank 0: (row of the finished case or None)
_TAG_TASK = 12  # rank 0 → leader: (case position, resume, overwrite) or None

#: Headline metrics: always a column (NaN when the run did not write them).
HEADLINE = (
    "axons.crossing_fraction",
    "mechanics.max_interface_strain_jump",
    "scaffold.mass_remaining_fraction",
)
#: Per-species headline metrics (``species.<name>.<key>``).
SPECIES_HEADLINE = ("lesion_auc_ng_day_per_mL",)
#: metrics.json sections whose numeric values become columns.
METRIC_SECTIONS = ("axons", "species", "scaffold", "mechanics", "mesh", "timing_s")
#: Row columns before the parameters and metrics.
LEAD_COLUMNS = ("case_id", "index", "status", "exit_code", "error", "wall_s", "ranks")


# ---------------------------------------------------------------------------
# Rows


def _flatten_numbers(tree: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(tree, dict):
        for k, v in tree.items():
            _flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(tree, bool):
        out[prefix] = float(tree)
    elif isinstance(tree, int | float):
        out[prefix] = float(tree)


def metric_columns(metrics: dict[str, Any], species: list[str]) -> dict[str, float]:
    """Numeric metrics as flat ``section.key`` columns; headline keys always present.

    Args:
        metrics: Parsed ``metrics.json`` (may be empty or partial).
        species: Growth-factor names of the case (for the per-species headline).

    Returns:
        Column → value; a missing headline metric is NaN.
    """
    out: dict[str, float] = {k: math.nan for k in HEADLINE}
    out.update({f"species.{s}.{k}": math.nan for s in species for k in SPECIES_HEADLINE})
    for section in METRIC_SECTIONS:
        if section in metrics:
            _flatten_numbers(metrics[section], section, out)
    return out


def read_metrics(case_dir: Path) -> dict[str, Any]:
    """``metrics.json`` of a case, or {} when absent or unreadable."""
    try:
        data = json.loads((case_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def case_row(plan: SweepPlan, pos: int, case_dir: Path, *, exit_code: int, error: str | None,
             wall_s: float, ranks: int) -> dict[str, Any]:
    """The results-table row of a case: status, varied values, metrics."""
    case = plan.cases[pos]
    done = (case_dir / "DONE").exists()
    if exit_code != 0:
        status = "failed"
    elif done:
        status = "done"
    else:
        status = "incomplete"
        error = error or "run returned 0 but wrote no DONE"
    row: dict[str, Any] = {"case_id": case.id, "index": case.index, "status": status,
                           "exit_code": exit_code, "error": error or "", "wall_s": wall_s,
                           "ranks": ranks}
    for key in plan.parameters:
        value, unit = parameter_value(case.study, key)
        row[parameter_column(key, unit)] = value
    row.update(metric_columns(read_metrics(case_dir), [s.name for s in case.study.species]))
    return row


class ResultsWriter:
    """Rows keyed by case id; rewrites results.csv/.parquet atomically (rank 0 only)."""

    def __init__(self, out: Path, plan: SweepPlan, rows: dict[str, dict[str, Any]]):
        self.out = out
        self.plan = plan
        self.rows = rows
        self.lock = threading.Lock()

    @staticmethod
    def load(out: Path) -> dict[str, dict[str, Any]]:
        """Rows of an earlier run of the sweep (keyed by case id)."""
        import pandas as pd

        path = out / "results.csv"
        try:
            df = pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"])
        except (FileNotFoundError, pd.errors.EmptyDataError):
            return {}
        return {str(r["case_id"]): r for r in df.to_dict("records")}

    def add(self, row: dict[str, Any]) -> None:
        """Insert or replace the row of a case and rewrite both tables."""
        with self.lock:
            self.rows[row["case_id"]] = row
            self.write()

    def frame(self):
        """The table as a DataFrame: lead columns, parameters (sweep order), metrics (sorted)."""
        import pandas as pd

        order = {c.id: c.index for c in self.plan.cases}
        rows = sorted(self.rows.values(), key=lambda r: order.get(r["case_id"], 1 << 30))
        df = pd.DataFrame(rows) if rows else \
            pd.DataFrame(columns=[*LEAD_COLUMNS, *parameter_columns(self.plan)])
        lead = [c for c in LEAD_COLUMNS if c in df.columns]
        params = [c for c in parameter_columns(self.plan) if c in df.columns]
        metrics = sorted(c for c in df.columns if c not in lead and c not in params)
        df = df[lead + params + metrics]
        if "error" in df:
            df["error"] = ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                           for v in df["error"]]
        return df

    def write(self) -> None:
        """Rewrite results.csv and results.parquet via temporary files and renames."""
        import io

        df = self.frame()
        atomic_write_text(self.out / "results.csv", df.to_csv(index=False))
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(self.out / "results.parquet", buf.getvalue())


def parameter_columns(plan: SweepPlan) -> list[str]:
    """Results-table columns of the varied values, in sweep order."""
    if not plan.cases:
        return []
    study = plan.cases[0].study
    return [parameter_column(k, parameter_value(study, k)[1]) for k in plan.parameters]


# ---------------------------------------------------------------------------
# Planning (rank 0)


@dataclass
class Todo:
    """A case to run: position in the plan and the run-directory flags."""

    pos: int
    resume: bool
    overwrite: bool


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
        """0 when every case is done, 3 when a case failed or is incomplete."""
        return EXIT_CASES_FAILED if self.failures else EXIT_OK

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


def _resolved_digest(case_dir: Path) -> str | None:
    from scaffoldfem.config.study import load_study

    try:
        return load_study(case_dir / "study.resolved.toml").digest()
    except StudyError:
        return None


def _prepare_dir(plan: SweepPlan, out: Path, overwrite: bool) -> None:
    """Create or reuse the sweep directory and write the plan (rank 0)."""
    if out.exists() and overwrite:
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if out.exists():
        if not out.is_dir():
            raise RunDirError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / "sweep.json").exists():
            raise RunDirError(f"{out} exists and holds no sweep (no sweep.json); results are never "
                              "overwritten silently: choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
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
        "parameters": params, "plot": plan.plot,
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


# ---------------------------------------------------------------------------
# Running


def _exit_code_of(err: BaseException) -> int:
    from scaffoldfem.errors import SimulationFailed

    if isinstance(err, SimulationFailed):
        return 3
    if isinstance(err, StudyError | RunDirError):
        return 2
    return 1


def _run_case(plan: SweepPlan, todo: Todo, out: Path, group: Any,
              runner: Runner) -> dict[str, Any] | None:
    """Run one case on ``group`` (collective); return its row on the group leader."""
    case = plan.cases[todo.pos]
    cdir = out / "cases" / case.id
    t0 = time.perf_counter()
    err_text, tb = None, ""
    try:
        code = int(runner(case.study, cdir, group, resume=todo.resume, overwrite=todo.overwrite,
                          quiet=True))
    except Exception as err:  # a failing case is recorded, the sweep goes on
        code = _exit_code_of(err)
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


class _Coordinator:
    """World rank 0: the queue of cases and the answers to group leaders."""

    def __init__(self, ctl: Any, todo: list[Todo], n_remote: int, on_row: Callable, poll: float):
        self.ctl = ctl
        self.todo = list(todo)
        self.lock = threading.Lock()
        self.remote = n_remote
        self.on_row = on_row
        self.poll = poll

    def take(self) -> Todo | None:
        with self.lock:
            return self.todo.pop(0) if self.todo else None

    def serve_pending(self) -> None:
        """Answer every request waiting now (non-blocking)."""
        from mpi4py import MPI

        status = MPI.Status()
        while self.remote and self.ctl.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_READY, status=status):
            src = status.Get_source()
            row = self.ctl.recv(source=src, tag=_TAG_READY)
            if row is not None:
                self._record(row)
            task = self.take()
            self.ctl.send(None if task is None else (task.pos, task.resume, task.overwrite),
                          dest=src, tag=_TAG_TASK)
            if task is None:
                self.remote -= 1

    def _record(self, row: dict[str, Any]) -> None:
        """Hand a row to the writer; a failure to write is reported, never fatal."""
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


def _quiet_wait(req: Any, poll: float) -> None:
    """Wait for a request without spinning (MPI waits busy-poll a core)."""
    while not req.Test():
        time.sleep(poll)


def _load_runner(spec: str | None) -> Runner | None:
    """``module:function`` or ``path/to/file.py:function`` → callable (None: run_study)."""
    if spec is None:
        return None
    target, _, name = spec.rpartition(":")
    if not target or not name:
        raise StudyError([f"--runner {spec}: expected MODULE:FUNCTION or FILE.py:FUNCTION"])
    if target.endswith(".py"):
        path = Path(target).resolve()
        sys.path.insert(0, str(path.parent))
        mod_spec = importlib.util.spec_from_file_location(path.stem, path)
        if mod_spec is None or mod_spec.loader is None:
            raise StudyError([f"--runner {spec}: cannot load {path}"])
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[path.stem] = module
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, name)


def _premesh(plan: SweepPlan, todo: list[Todo], comm: Any) -> None:
    """Mesh every distinct geometry once, on all ranks, before the groups start, so
    that concurrent groups never mesh (and write) the same cached file at once."""
    from scaffoldfem.geometry.meshing import ensure_mesh

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


def run_sweep(plan: SweepPlan, out: Path, comm: Any, *, ranks_per_case: int = 1,
              runner: Runner | None = None, overwrite: bool = False, collect_only: bool = False,
              quiet: bool = False, poll: float = 0.05) -> SweepSummary:
    """Run (or resume) every case of ``plan`` into ``out`` on ``comm``.

    Args:
        plan: The validated sweep (identical on every rank).
        out: Sweep directory.
        comm: The world communicator of the sweep (collective call).
        ranks_per_case: K, ranks per case; must divide ``comm.size``.
        runner: ``runner(study, case_dir, group_comm, *, resume, overwrite, quiet) -> int``;
            None = :func:`scaffoldfem.run.loop.run_study` (and meshes are made up front).
        overwrite: Delete ``out`` first.
        collect_only: Run nothing; only (re)build the results tables from the case
            directories (used after a SLURM job array).
        quiet: No per-case progress lines.
        poll: Seconds between polls of rank 0's coordinator.

    Returns:
        The summary, the same on every rank.

    Raises:
        StudyError: ``ranks_per_case`` does not divide the ranks, or the directory
            holds cases of a different sweep.
        RunDirError: ``out`` exists and is not a sweep directory.
    """
    size, rank = comm.size, comm.rank
    if ranks_per_case < 1 or size % ranks_per_case:
        raise StudyError([f"--ranks-per-case {ranks_per_case} must be >= 1 and divide the "
                          f"{size} MPI rank(s)"])
    out = Path(out).resolve()
    t_start = time.perf_counter()

    # Rank 0 prepares the directory and decides what is left to do.
    state: tuple[str, Any]
    writer = None
    if rank == 0:
        try:
            _prepare_dir(plan, out, overwrite)
            writer = ResultsWriter(out, plan, ResultsWriter.load(out))
            writer.rows = {k: v for k, v in writer.rows.items()
                           if k in {c.id for c in plan.cases}}
            todo, collect = _plan_work(plan, out, writer.rows)
            state = ("ok", (todo, collect))
        except (StudyError, RunDirError) as err:
            state = ("error", (type(err).__name__, getattr(err, "lines", [str(err)])))
        except OSError as err:  # e.g. no permission: every rank must hear of it, not hang
            state = ("error", ("RunDirError", [f"{out}: {err}"]))
    else:
        state = ("", None)
    state = comm.bcast(state, root=0)
    if state[0] == "error":
        kind, lines = state[1]
        raise StudyError(lines) if kind == "StudyError" else RunDirError("\n".join(lines))
    todo, collect = state[1]

    say = (lambda msg: print(msg, flush=True)) if rank == 0 and not quiet else (lambda msg: None)
    if rank == 0:
        assert writer is not None
        for pos in collect:  # done before a kill, row not yet written: no recompute
            row = case_row(plan, pos, out / "cases" / plan.cases[pos].id, exit_code=0, error=None,
                           wall_s=math.nan, ranks=0)
            row["wall_s"] = row.get("timing_s.total", math.nan)
            row["ranks"] = row.get("mesh.ranks", math.nan)
            writer.rows[row["case_id"]] = row
        writer.write()
    n_skip = len(plan.cases) - len(todo)
    if collect_only:
        todo = []
    else:
        say(f"sweep {plan.name}: {len(plan.cases)} cases, {n_skip} already done, {len(todo)} to "
            f"run on {size // ranks_per_case} group(s) of {ranks_per_case} rank(s)")

    if todo and runner is None:
        from scaffoldfem.run.loop import run_study

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
        _run_groups(plan, todo, out, comm, ranks_per_case, runner, on_row, poll)

    # Every rank leaves together, without spinning while the last cases finish.
    _quiet_wait(comm.Ibarrier(), poll)
    summary = None
    if rank == 0:
        assert writer is not None
        writer.write()
        failures = [(r["case_id"], r["status"], str(r.get("error") or ""))
                    for r in writer.frame().to_dict("records") if r["status"] != "done"]
        pending = sum(1 for c in plan.cases if c.id not in writer.rows)  # never run yet
        summary = SweepSummary(total=len(plan.cases), ran=len(todo), skipped=n_skip,
                               failures=failures, wall_s=time.perf_counter() - t_start,
                               pending=pending)
    return comm.bcast(summary, root=0)


def _run_groups(plan: SweepPlan, todo: list[Todo], out: Path, comm: Any, k: int, runner: Runner,
                on_row: Callable, poll: float) -> None:
    """The dynamic queue: groups of ``k`` ranks take cases until none is left."""
    from mpi4py import MPI

    rank = comm.rank
    group = comm.Split(color=rank // k, key=rank)
    ctl = comm.Dup()  # coordination messages never mix with anything else on COMM_WORLD
    n_groups = comm.size // k
    try:
        if rank == 0:
            coord = _Coordinator(ctl, todo, n_groups - 1, on_row, poll)
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
                coord._record(_run_case(plan, task, out, group, runner))
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
                row = _run_case(plan, Todo(*msg), out, group, runner)
    finally:
        ctl.Free()
        group.Free()


# ---------------------------------------------------------------------------
# Entry points


def load_sweep_mpi(comm: Any, path: Path) -> SweepPlan:
    """:func:`load_sweep` on rank 0, the plan (or the error lines) broadcast."""
    return on_rank0(comm, lambda: load_sweep(path))


def sweep_command(sweep_path: Path, out: Path | None, comm: Any, ranks_per_case: int, slurm: bool,
                  overwrite: bool, *, runner: Runner | None = None, collect_only: bool = False,
                  quiet: bool = False) -> int:
    """``scaffoldfem sweep``: validate every case, then run the sweep or write SLURM scripts.

    Args:
        sweep_path: The sweep TOML file.
        out: Sweep directory (default with ``slurm``: ``runs/<sweep name>``).
        comm: MPI world communicator.
        ranks_per_case: Ranks per case (K).
        slurm: Write SLURM scripts into ``out/slurm`` instead of running.
        overwrite: Replace an existing sweep directory.
        runner: Case runner (tests); None = ``run_study``.
        collect_only: Only rebuild results.csv/.parquet from the case directories.
        quiet: No progress lines.

    Returns:
        0 when every case is done (or the scripts are written), 3 when a case failed.

    Raises:
        StudyError: Bad sweep file or invalid cases (nothing is run), bad ``ranks_per_case``.
        RunDirError: ``out`` exists and is not a sweep directory.
    """
    plan = load_sweep_mpi(comm, Path(sweep_path))
    if out is None:
        if not slurm:
            raise StudyError(["--out DIR is required (or --slurm to write a batch script)"])
        out = Path("runs") / plan.name
    out = Path(out)
    if slurm:
        from scaffoldfem.sweep.slurm import write_slurm_scripts

        err = None
        if comm.rank == 0:
            try:
                _prepare_dir(plan, out.resolve(), overwrite)
                paths = write_slurm_scripts(plan, out.resolve(), ranks_per_case=ranks_per_case)
                print("\n".join(f"wrote {p}" for p in paths), flush=True)
                print(f"submit: sbatch {paths[0]}   (one allocation, MPI sweep)\n"
                      f"    or: sbatch {paths[1]}   (job array, one case per task)", flush=True)
            except (StudyError, RunDirError) as e:
                err = getattr(e, "lines", [str(e)])
        err = comm.bcast(err, root=0)
        if err:
            raise StudyError(err)
        return EXIT_OK
    summary = run_sweep(plan, out, comm, ranks_per_case=ranks_per_case, runner=runner,
                        overwrite=overwrite, collect_only=collect_only, quiet=quiet)
    if comm.rank == 0:
        print("\n".join(summary.lines()), flush=True)
    return summary.exit_code


def main(argv: list[str] | None = None) -> int:
    """``python -m scaffoldfem.sweep.runner`` (same options as ``scaffoldfem sweep``, plus
    ``--runner`` for tests and ``--collect-only`` for SLURM job arrays)."""
    from mpi4py import MPI

    p = argparse.ArgumentParser(prog="python -m scaffoldfem.sweep.runner",
                                description="Run a parametric sweep as an MPI batch job.")
    p.add_argument("sweep", type=Path, help="sweep TOML file")
    p.add_argument("--out", type=Path, default=None, help="sweep directory")
    p.add_argument("--ranks-per-case", type=int, default=1, help="MPI ranks per case (default 1)")
    p.add_argument("--slurm", action="store_true", help="write SLURM scripts instead of running")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sweep directory")
    p.add_argument("--collect-only", action="store_true",
                   help="run nothing; rebuild results.csv/.parquet from the case directories")
    p.add_argument("--runner", default=None, metavar="MODULE:FUNC",
                   help="case runner instead of scaffoldfem.run.loop.run_study (testing)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    comm = MPI.COMM_WORLD
    try:
        return sweep_command(args.sweep, args.out, comm, args.ranks_per_case, args.slurm,
                             args.overwrite, runner=_load_runner(args.runner),
                             collect_only=args.collect_only, quiet=args.quiet)
    except StudyError as err:
        if comm.rank == 0:
            print(*err.lines, sep="\n", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except RunDirError as err:
        if comm.rank == 0:
            print(f"sweep: {err}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
