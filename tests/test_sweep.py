"""Parametric sweeps: sweep files, the MPI case queue, resume, failures, SLURM, plots.

Most tests drive the sweep with :func:`fake_runner`, a collective stand-in for
``run_study`` that honours the run-directory contract (refuses an existing
directory, writes ``study.resolved.toml``, ``metrics.json`` and, last, ``DONE``)
and whose metrics are a quadrature split over the ranks of its communicator, so
the results check both which case a row belongs to and that the case ran on
the right sub-communicator. One test runs the real ``run_study`` on the coarse
mesh. Subprocess tests (``mpiexec -n 2 scaffoldfem sweep``, SIGKILL) run in the
serial pass only.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clean_env, cli_in_process, serial_only

from scaffoldfem.errors import RunDirError, StudyError
from scaffoldfem.files import atomic_write_json, atomic_write_text
from scaffoldfem.run.progress import Progress, signals_held
from scaffoldfem.run.rundir import prepare_run_dir_mpi
from scaffoldfem.sweep.columns import parameter_value
from scaffoldfem.sweep.plan import Sample, load_sweep
from scaffoldfem.sweep.runner import run_sweep

BASELINE = ROOT / "studies" / "baseline.toml"
N_QUAD = 2000


# ---------------------------------------------------------------------------
# The fake runner (also loaded by the subprocess tests via --runner FILE:fake_runner)


def expected_crossing(porosity: float, modulus_kpa: float) -> float:
    """∫_0^1 φ exp(-t/E) dt = φ E (1 - exp(-1/E)): what fake_runner integrates."""
    return porosity * modulus_kpa * (1.0 - math.exp(-1.0 / modulus_kpa))


def fake_runner(study, out, comm, *, resume=False, overwrite=False, quiet=False,
                on_done=None) -> int:
    """Collective stand-in for run_study (see the module docstring).

    Like run_study it calls ``on_done(out, comm)`` on every rank before DONE when the study asks
    for figures, after writing ``on_done.txt`` with the callback's name.

    Study ``description`` selects a failure: ``"raise"`` raises SimulationFailed,
    ``"exit3"`` returns 3; case ids listed in FAKE_FAIL_IDS raise too. Environment:
    FAKE_LOG (append one line per case start), FAKE_KILL_AFTER=n (SIGKILL itself when
    n cases of the sweep are DONE), FAKE_INTERRUPT_AFTER=n (raise KeyboardInterrupt
    instead), FAKE_SLEEP (seconds).
    """
    import time

    from mpi4py import MPI

    from scaffoldfem.errors import SimulationFailed

    out = Path(out)
    prepare_run_dir_mpi(out, comm, resume=resume, overwrite=overwrite)
    if comm.rank == 0:
        atomic_write_text(out / "study.resolved.toml", study.to_toml())
        if os.environ.get("FAKE_LOG"):
            with open(os.environ["FAKE_LOG"], "a") as fh:
                fh.write(f"{out.name} resume={resume} world_rank={MPI.COMM_WORLD.rank} "
                         f"size={comm.size}\n")
    comm.barrier()
    n_done = len(list(out.parent.glob("*/DONE")))
    if os.environ.get("FAKE_KILL_AFTER") and n_done >= int(os.environ["FAKE_KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("FAKE_INTERRUPT_AFTER") and n_done >= int(os.environ["FAKE_INTERRUPT_AFTER"]):
        raise KeyboardInterrupt("fake interruption")
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if study.description == "raise" or out.name in os.environ.get("FAKE_FAIL_IDS", "").split(","):
        raise SimulationFailed("BDNF", 1.5, "fake divergence")
    if study.description == "exit3":
        return 3
    phi, modulus = study.scaffold.porosity, study.scaffold.solid_modulus
    # Midpoint rule split over the ranks: the sum is the same for any comm size.
    i = np.arange(comm.rank, N_QUAD, comm.size)
    t = (i + 0.5) / N_QUAD
    crossing = comm.allreduce(float(np.sum(phi * np.exp(-t / modulus))) / N_QUAD)
    metrics = {
        "axons": {"crossing_fraction": crossing, "crossed": round(100 * crossing)},
        "species": {s.name: {"lesion_auc_ng_day_per_mL":
                             sum(c.loading for c in s.carriers) * phi / 1e3}
                    for s in study.species},
        "mechanics": {"interface_strain_jump": {"p95": 1.0 / (modulus * (1 - phi) ** 2)}},
        "scaffold": {"mass_remaining_fraction": math.exp(-study.scaffold.hydrolysis_rate
                                                         * study.time.duration)},
        "mesh": {"ranks": comm.size},
    }
    figures = on_done is not None and study.output.figures
    if comm.rank == 0:
        atomic_write_json(out / "metrics.json", metrics)
        if figures:
            atomic_write_text(out / "on_done.txt", f"{on_done.__module__}.{on_done.__name__}\n")
    comm.barrier()
    if figures:
        on_done(out, comm)  # collective, like run_study's
    comm.barrier()
    if comm.rank == 0:
        atomic_write_text(out / "DONE", "ok\n")
    comm.barrier()
    return 0


# ---------------------------------------------------------------------------
# Helpers

SWEEP_2x2 = f"""
name = "two_by_two"
base = "{BASELINE}"
[set]
"geometry.resolution" = "coarse"
"time.duration" = "7 day"
[grid]
"scaffold.porosity" = [0.7, 0.9]
"scaffold.solid_modulus" = ["1 kPa", "100 kPa"]
"""


@pytest.fixture
def shared(comm, tmp_path):
    """A temporary directory shared by every rank (rank 0's tmp_path)."""
    return Path(comm.bcast(str(tmp_path), root=0))


def write(path: Path, text: str, comm=None) -> Path:
    if comm is None or comm.rank == 0:
        path.write_text(text)
    if comm is not None:
        comm.barrier()
    return path


def results(out: Path):
    import pandas as pd

    return pd.read_csv(out / "results.csv")


def check_fake_metrics(df) -> None:
    """Every done row carries the metrics of its own parameters."""
    for _, r in df[df.status == "done"].iterrows():
        phi, e = r["scaffold.porosity"], r["scaffold.solid_modulus_kPa"]
        assert r["axons.crossing_fraction"] == pytest.approx(expected_crossing(phi, e), rel=1e-6)
        assert r["mechanics.interface_strain_jump.p95"] == pytest.approx(1 / (e * (1 - phi) ** 2))
        assert r["mesh.ranks"] == r["ranks"]


# ---------------------------------------------------------------------------
# Sweep files


def test_grid_cases_ids_and_values(tmp_path):
    plan = load_sweep(write(tmp_path / "s.toml", SWEEP_2x2))
    assert [c.id for c in plan.cases] == [
        "c000-porosity0.7-solid_modulus1kPa", "c001-porosity0.7-solid_modulus100kPa",
        "c002-porosity0.9-solid_modulus1kPa", "c003-porosity0.9-solid_modulus100kPa"]
    # Units converted once; [set] applied to every case; the rest from the base study.
    assert [c.study.scaffold.solid_modulus for c in plan.cases] == [1.0, 100.0, 1.0, 100.0]
    assert all(c.study.geometry.resolution == "coarse" and c.study.time.duration == 7.0
               for c in plan.cases)
    assert parameter_value(plan.cases[1].study, "scaffold.solid_modulus") == (100.0, "kPa")
    assert plan.plot == ["scaffold.porosity", "scaffold.solid_modulus"]
    # Ids are stable: the same file gives the same ids and studies.
    assert load_sweep(tmp_path / "s.toml").digest() == plan.digest()


def test_nested_tables_named_list_elements_and_explicit_cases(tmp_path):
    plan = load_sweep(write(tmp_path / "s.toml", f"""
base = "{BASELINE}"
[grid.species.BDNF]
half_life = ["2 h", "8 h"]
[[cases]]
id = "stiff_gel"
scaffold = {{ solid_modulus = "2 MPa", porosity = 0.6 }}
[[cases]]
"geometry.channels.count" = 1
"""))
    ids = [c.id for c in plan.cases]
    assert ids == ["c000-half_life2h", "c001-half_life8h", "c002-stiff_gel", "c003-count1"]
    bdnf = [next(s for s in c.study.species if s.name == "BDNF") for c in plan.cases]
    assert [b.half_life for b in bdnf[:2]] == pytest.approx([2 / 24, 8 / 24])
    assert plan.cases[2].study.scaffold.solid_modulus == pytest.approx(2000.0)
    assert plan.cases[3].study.geometry.channels.count == 1


def test_latin_hypercube_is_stratified_reproducible_and_in_range(tmp_path):
    text = f"""
base = "{BASELINE}"
[sample]
method = "lhs"
n = 8
seed = 7
[sample.ranges]
"scaffold.porosity" = [0.6, 0.9]
"scaffold.solid_modulus" = {{ low = "1 kPa", high = "1 MPa", log = true }}
"geometry.channels.count" = [1, 7]
"""
    plan = load_sweep(write(tmp_path / "s.toml", text))
    phi = np.array([c.study.scaffold.porosity for c in plan.cases])
    e = np.array([c.study.scaffold.solid_modulus for c in plan.cases])
    n_ch = [c.study.geometry.channels.count for c in plan.cases]
    # One sample per stratum in each dimension (linear for porosity, log for modulus).
    assert sorted(np.floor((phi - 0.6) / 0.3 * 8).astype(int)) == list(range(8))
    assert sorted(np.floor(np.log(e / 1.0) / np.log(1000.0) * 8).astype(int)) == list(range(8))
    assert all(isinstance(n, int) and 1 <= n <= 7 for n in n_ch)
    assert all(c.overrides["scaffold.solid_modulus"].endswith(" kPa") for c in plan.cases)
    assert [c.id for c in load_sweep(tmp_path / "s.toml").cases] == [c.id for c in plan.cases]
    ranges = {"a": [0.0, 1.0], "b": [0.0, 1.0]}
    p7, p8 = (Sample.model_validate({"n": 8, "seed": s, "ranges": ranges}).points() for s in (7, 8))
    assert not np.allclose(p7, p8)  # the seed matters


def test_sobol_needs_a_power_of_two(tmp_path):
    text = f'base = "{BASELINE}"\n[sample]\nmethod = "sobol"\nseed = 1\nn = 8\n' \
           '[sample.ranges]\n"scaffold.porosity" = [0.6, 0.9]\n'
    plan = load_sweep(write(tmp_path / "s.toml", text))
    phi = np.array([c.study.scaffold.porosity for c in plan.cases])
    assert len(phi) == 8 and np.all((phi >= 0.6) & (phi <= 0.9))
    # A scrambled Sobol' set of 2^3 points has one point in each eighth of [0, 1).
    assert sorted(np.floor((phi - 0.6) / 0.3 * 8).astype(int)) == list(range(8))
    with pytest.raises(StudyError, match="power of 2"):
        load_sweep(write(tmp_path / "t.toml", text.replace("n = 8", "n = 6")))


def test_every_invalid_case_is_reported_at_once(tmp_path):
    path = write(tmp_path / "s.toml", f"""
base = "{BASELINE}"
[grid]
"scaffold.porosity" = [0.7, 1.2]
"scaffold.solid_modulus" = ["10 kPa", "10 mm"]
""")
    with pytest.raises(StudyError) as info:
        load_sweep(path)
    lines = info.value.lines
    assert "3 of 4 cases are invalid; nothing was run" in lines[0]
    by_case = {}
    for line in lines[1:]:
        cid, msg = line.split(": ", 1)
        by_case.setdefault(cid, []).append(msg)
    assert sorted(by_case) == ["c001-porosity0.7-solid_modulus10mm",
                               "c002-porosity1.2-solid_modulus10kPa",
                               "c003-porosity1.2-solid_modulus10mm"]
    assert len(by_case["c003-porosity1.2-solid_modulus10mm"]) == 2  # both problems
    assert all(m.startswith(("scaffold.porosity", "scaffold.solid_modulus"))
               for msgs in by_case.values() for m in msgs)


@pytest.mark.parametrize("text, expect", [
    ('[grid]\n"scaffold.porosity" = []\n', "empty"),
    ('colour = "red"\n[grid]\n"scaffold.porosity" = [0.7]\n', "colour: unknown key"),
    ('base = "missing.toml"\n[grid]\n"scaffold.porosity" = [0.7]\n', "no such base study"),
    ('name = "x"\n', "needs [grid], [[cases]] or [sample]"),
    ('[sample]\nn = 4\n[sample.ranges]\n"scaffold.porosity" = [0.9, 0.6]\n', "low < high"),
    ('[sample]\nn = 4\n[sample.ranges]\n"scaffold.solid_modulus" = ["1 kPa", "2 mm"]\n',
     "cannot compare"),
])
def test_bad_sweep_files(tmp_path, text, expect):
    with pytest.raises(StudyError) as info:
        load_sweep(write(tmp_path / "s.toml", text))
    assert expect in "\n".join(info.value.lines)


def test_set_overrides_every_case_after_the_files_set(tmp_path):
    path = write(tmp_path / "s.toml", SWEEP_2x2)
    plan = load_sweep(path, ["time.duration=14 day", "axons.count=50"])
    assert {c.study.time.duration for c in plan.cases} == {14.0}  # over [set]'s 7 days
    assert {c.study.axons.count for c in plan.cases} == {50}
    assert plan.overrides == ["time.duration=14 day", "axons.count=50"]
    assert plan.digest() != load_sweep(path).digest()  # a resume would see the change
    with pytest.raises(StudyError, match=r"scaffold\.porosity is varied by the sweep"):
        load_sweep(path, ["scaffold.porosity=0.8"])


def test_a_problem_every_case_has_is_reported_once(tmp_path):
    path = write(tmp_path / "s.toml", SWEEP_2x2)
    with pytest.raises(StudyError) as info:
        load_sweep(path, ["axons.count=-1"])
    lines = info.value.lines
    assert "4 of 4 cases are invalid" in lines[0]
    assert lines[1:] == ["every case: axons.count: input should be greater than or equal to 0 "
                         "(got -1)"]


def test_equal_labels_still_give_distinct_ids(tmp_path):
    # Explicit labels keep the index prefix, so equal labels still give distinct ids.
    text = '[[cases]]\nid = "a"\n"scaffold.porosity" = 0.7\n[[cases]]\nid = "a"\n' \
           '"scaffold.porosity" = 0.8\n'
    plan = load_sweep(write(tmp_path / "s.toml", text))
    assert [c.id for c in plan.cases] == ["c000-a", "c001-a"]


# ---------------------------------------------------------------------------
# Running sweeps in-process (serial pass: one rank; MPI pass: 2 ranks)


@pytest.mark.parametrize("k", ["one", "all"])
def test_sweep_runs_every_case_once(comm, shared, k, monkeypatch):
    k = 1 if k == "one" else comm.size
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    out = shared / f"out{k}"
    log = shared / f"log{k}.txt"
    groups = comm.size // k
    monkeypatch.setenv("FAKE_LOG", str(log))
    if groups > 1:  # long enough cases that every group gets one
        monkeypatch.setenv("FAKE_SLEEP", "0.3")
    summary = run_sweep(plan, out, comm, ranks_per_case=k, runner=fake_runner, quiet=True)
    if groups > 1:
        # The MPI pass runs with MPI_THREAD_MULTIPLE: rank 0's coordinator is a thread
        # and world rank 0 computes too (the single-thread queue: the CLI tests below).
        assert {line.split()[2] for line in log.read_text().splitlines()} == {
            f"world_rank={r}" for r in range(0, comm.size, k)}
    assert (summary.total, summary.ran, summary.skipped, summary.failures) == (4, 4, 0, [])
    assert summary.exit_code == 0
    dirs = sorted(p.name for p in (out / "cases").iterdir())
    assert dirs == [c.id for c in plan.cases]
    assert all((out / "cases" / d / "DONE").exists() for d in dirs)
    df = results(out)
    assert list(df.case_id) == dirs and set(df.status) == {"done"} and set(df.ranks) == {k}
    check_fake_metrics(df)
    import pandas as pd

    pq = pd.read_parquet(out / "results.parquet")
    assert list(pq.case_id) == dirs
    np.testing.assert_allclose(pq["axons.crossing_fraction"], df["axons.crossing_fraction"])
    # The resolved study of each case is the one of the plan (used to detect edits).
    manifest = json.loads((out / "sweep.json").read_text())
    assert [c["id"] for c in manifest["cases"]] == dirs
    assert (out / "cases.txt").read_text().split() == dirs
    # Rerunning recomputes nothing and adds no row.
    again = run_sweep(plan, out, comm, ranks_per_case=k, runner=fake_runner, quiet=True)
    assert (again.ran, again.skipped) == (0, 4)
    assert len(results(out)) == 4


def test_ranks_per_case_does_not_change_metrics(comm, shared):
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    a = run_sweep(plan, shared / "a", comm, ranks_per_case=1, runner=fake_runner, quiet=True)
    b = run_sweep(plan, shared / "b", comm, ranks_per_case=comm.size, runner=fake_runner,
                  quiet=True)
    assert a.exit_code == b.exit_code == 0
    da, db = results(shared / "a"), results(shared / "b")
    np.testing.assert_allclose(da["axons.crossing_fraction"], db["axons.crossing_fraction"],
                               rtol=1e-12)
    assert set(da.ranks) == {1} and set(db.ranks) == {comm.size}


def test_interrupted_sweep_resumes_without_recomputing(comm, shared, monkeypatch):
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    out = shared / "out"
    log = shared / "log.txt"
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_INTERRUPT_AFTER", "2")
    with pytest.raises(KeyboardInterrupt):  # one group: every rank is interrupted together
        run_sweep(plan, out, comm, ranks_per_case=comm.size, runner=fake_runner, quiet=True)
    done_before = {p.parent.name for p in (out / "cases").glob("*/DONE")}
    assert len(done_before) == 2 and len(results(out)) == 2
    monkeypatch.delenv("FAKE_INTERRUPT_AFTER")
    first = log.read_text().splitlines()
    summary = run_sweep(plan, out, comm, ranks_per_case=comm.size, runner=fake_runner, quiet=True)
    second = log.read_text().splitlines()[len(first):]
    assert (summary.ran, summary.skipped, summary.exit_code) == (2, 2, 0)
    rerun = {line.split()[0]: line.split()[1] for line in second}
    assert not set(rerun) & done_before  # nothing done is recomputed
    interrupted = first[-1].split()[0]
    assert rerun[interrupted] == "resume=True"  # the interrupted case resumes
    df = results(out)
    assert sorted(df.case_id) == [c.id for c in plan.cases] and set(df.status) == {"done"}
    check_fake_metrics(df)


def test_failed_cases_are_recorded_and_do_not_stop_the_sweep(comm, shared):
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2 + """
[[cases]]
id = "diverges"
description = "raise"
[[cases]]
id = "bad-exit"
description = "exit3"
""", comm))
    out = shared / "out"
    summary = run_sweep(plan, out, comm, ranks_per_case=1, runner=fake_runner, quiet=True)
    assert summary.exit_code == 3
    assert [(f[0], f[1]) for f in summary.failures] == [("c004-diverges", "failed"),
                                                         ("c005-bad-exit", "failed")]
    assert "SimulationFailed" in summary.failures[0][2]
    assert "fake divergence" in summary.failures[0][2]
    assert summary.failures[1][2] == "exit code 3"
    assert any("c004-diverges: failed" in line for line in summary.lines())
    df = results(out).set_index("case_id")
    assert df.loc["c004-diverges", "exit_code"] == 3 and df.loc["c005-bad-exit", "exit_code"] == 3
    assert (df.status == "done").sum() == 4
    assert math.isnan(df.loc["c004-diverges", "axons.crossing_fraction"])
    assert "Traceback" in (out / "cases" / "c004-diverges" / "sweep_error.txt").read_text()
    # A rerun retries only the failed cases and keeps one row per case.
    again = run_sweep(plan, out, comm, ranks_per_case=1, runner=fake_runner, quiet=True)
    assert (again.ran, again.skipped, len(again.failures)) == (2, 4, 2)
    assert len(results(out)) == 6


def test_edited_sweep_refuses_to_mix_results(comm, shared):
    write(shared / "s.toml", SWEEP_2x2, comm)
    out = shared / "out"
    run_sweep(load_sweep(shared / "s.toml"), out, comm, runner=fake_runner, quiet=True)
    edited = load_sweep(write(shared / "s.toml", SWEEP_2x2.replace("7 day", "14 day"), comm))
    with pytest.raises(StudyError) as info:
        run_sweep(edited, out, comm, runner=fake_runner, quiet=True)
    assert "4 case(s) differ" in info.value.lines[0] and len(info.value.lines) == 5
    summary = run_sweep(edited, out, comm, runner=fake_runner, overwrite=True, quiet=True)
    assert summary.ran == 4


def test_directory_rules_and_bad_ranks_per_case(comm, shared):
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    other = shared / "notasweep"
    if comm.rank == 0:
        other.mkdir()
        (other / "data.txt").write_text("keep me")
    comm.barrier()
    with pytest.raises(RunDirError, match="holds no sweep"):
        run_sweep(plan, other, comm, runner=fake_runner, quiet=True)
    assert (other / "data.txt").read_text() == "keep me"
    with pytest.raises(StudyError, match="ranks-per-case"):
        run_sweep(plan, shared / "x", comm, ranks_per_case=comm.size + 1, runner=fake_runner)


def test_collect_only_rebuilds_rows_without_running(comm, shared, monkeypatch):
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    out = shared / "out"
    monkeypatch.setenv("FAKE_INTERRUPT_AFTER", "2")
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, out, comm, ranks_per_case=comm.size, runner=fake_runner, quiet=True)
    monkeypatch.delenv("FAKE_INTERRUPT_AFTER")
    if comm.rank == 0:
        (out / "results.csv").unlink()  # as after a job array: DONE cases, no table
    comm.barrier()
    summary = run_sweep(plan, out, comm, runner=fake_runner, collect_only=True, quiet=True)
    assert (summary.ran, summary.pending, summary.exit_code) == (0, 2, 0)
    df = results(out)
    assert len(df) == 2 and set(df.status) == {"done"}
    check_fake_metrics(df)


def test_figures_are_injected_per_case_and_per_sweep(comm, shared):
    """The sweep draws nothing itself: it hands ``on_case_done`` to each case's runner
    (called where the case asks for figures) and calls ``on_done`` once, on rank 0,
    after running; a failing sweep picture is a warning, not a failed sweep."""
    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2 + """
[[cases]]
id = "nofig"
"output.figures" = false
""", comm))
    out = shared / "out"
    sweep_calls = []

    def draw_case(case_dir, case_comm):
        names = case_comm.gather(case_comm.rank, root=0)  # collective on the case's ranks
        if case_comm.rank == 0:
            atomic_write_text(Path(case_dir) / "drawn.txt", f"{names}\n")

    def draw_sweep(sweep_dir):
        sweep_calls.append((comm.rank, Path(sweep_dir)))
        raise RuntimeError("no pictures today")

    summary = run_sweep(plan, out, comm, runner=fake_runner, quiet=True,
                        on_case_done=draw_case, on_done=draw_sweep)
    assert summary.exit_code == 0
    drawn = sorted(p.parent.name for p in (out / "cases").glob("*/drawn.txt"))
    assert drawn == [c.id for c in plan.cases if c.study.output.figures] and len(drawn) == 4
    # Called collectively on each case's own communicator (one rank per case here).
    assert {p.read_text() for p in (out / "cases").glob("*/drawn.txt")} == {"[0]\n"}
    assert sweep_calls == ([(0, out.resolve())] if comm.rank == 0 else [])
    # --collect-only draws no sweep pictures.
    sweep_calls.clear()
    run_sweep(plan, out, comm, runner=fake_runner, quiet=True, collect_only=True,
              on_done=draw_sweep)
    assert sweep_calls == []


def test_one_sweep_parser(capsys):
    """``scaffoldfem sweep`` is the one sweep command line (the SLURM scripts use it too);
    its options come from scaffoldfem.sweep.args, with the test hook kept out of --help."""
    from scaffoldfem.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["sweep", "s.toml", "--out", "o", "--ranks-per-case", "2",
                              "--collect-only", "--quiet", "--runner", "m:f"])
    assert (args.sweep, args.out, args.ranks_per_case) == (Path("s.toml"), Path("o"), 2)
    assert (args.collect_only, args.quiet, args.slurm, args.runner) == (True, True, False, "m:f")
    with pytest.raises(SystemExit):
        parser.parse_args(["sweep", "--help"])
    text = capsys.readouterr().out
    assert all(o in text for o in ("--ranks-per-case K", "--slurm", "--overwrite",
                                   "--collect-only", "--quiet"))
    assert "--runner" not in text


def test_slurm_scripts(comm, shared):
    from scaffoldfem.api import slurm_scripts

    path = write(shared / "s.toml", SWEEP_2x2, comm)
    out = shared / "out"
    paths = slurm_scripts(path, out, comm, ranks_per_case=2, overrides=["axons.count=50"])
    assert [p.name for p in paths] == ["sweep.sbatch", "sweep_array.sbatch"]
    alloc = (out / "slurm" / "sweep.sbatch").read_text()
    array = (out / "slurm" / "sweep_array.sbatch").read_text()
    assert "#SBATCH --ntasks=8" in alloc and "--ranks-per-case 2 --set axons.count=50" in alloc
    # The collect step must load the same plan (same --set) as the run.
    assert "--collect-only --quiet --set axons.count=50" in array
    assert f"sweep {path.resolve()} --out {out.resolve()}" in alloc
    assert "#SBATCH --array=0-3%4" in array and "#SBATCH --ntasks=2" in array
    assert "--resume" in array and "--collect-only" in array and "apptainer exec" in array
    # The array tasks rebuild the table through the one sweep command line.
    assert f'"${{SF[@]}}" sweep {path.resolve()} --out "$DIR"' in array
    assert not (out / "cases").exists()  # nothing was run
    assert (out / "cases.txt").read_text().split() == [c.id for c in load_sweep(path).cases]
    for sid in (out / "cases.txt").read_text().split():  # inputs of `scaffoldfem run`
        case = tomllib.loads((out / "studies" / f"{sid}.toml").read_text())
        assert case["name"] == "baseline" and case["axons"]["count"] == 50
    if comm.rank == 0:
        for script in ("sweep.sbatch", "sweep_array.sbatch"):
            subprocess.run(["bash", "-n", str(out / "slurm" / script)], check=True)


def test_sweep_plots(comm, shared, monkeypatch):
    from scaffoldfem.viz.sweep_plots import plot_sweep

    plan = load_sweep(write(shared / "s.toml", SWEEP_2x2, comm))
    out = shared / "out"
    monkeypatch.setenv("FAKE_FAIL_IDS", plan.cases[3].id)
    run_sweep(plan, out, comm, runner=fake_runner, quiet=True)
    if comm.rank == 0:
        import imageio.v3 as iio

        df = results(out)
        # Each case drew a picture whose green level is its crossing fraction.
        for _, r in df[df.status == "done"].iterrows():
            (out / "cases" / r.case_id / "figures").mkdir()
            img = np.zeros((40, 60, 3), np.uint8)
            img[:, :, 1] = int(255 * r["axons.crossing_fraction"])
            iio.imwrite(out / "cases" / r.case_id / "figures" / "view.png", img)
        names = {p.name for p in plot_sweep(out)}
        assert {"sweep_axons_crossing_fraction.png", "sweep_overview.png", "sweep_montage.png",
                "sweep_species_BDNF_lesion_auc_ng_day_per_mL.png",
                "sweep_mechanics_interface_strain_jump_p95.png"} <= names
        heat = iio.imread(out / "figures" / "sweep_axons_crossing_fraction.png")[..., :3]
        px = heat.reshape(-1, 3).astype(int)
        assert heat.std() > 20  # not blank
        # 3 computed cells span viridis from dark purple to yellow; the failed one is grey.
        for colour in ([68, 1, 84], [253, 231, 37], [217, 217, 217]):
            assert np.sum(np.all(np.abs(px - colour) < 12, axis=1)) > 500, colour
        montage = iio.imread(out / "figures" / "sweep_montage.png")[..., :3].astype(int)
        greens = set(np.unique(montage[..., 1][(montage[..., 0] == 0) & (montage[..., 2] == 0)]))
        done = df[df.status == "done"]["axons.crossing_fraction"]
        for value in (done.max(), done.min()):  # best and worst case pictures are shown
            assert any(abs(g - int(255 * value)) <= 2 for g in greens)
    comm.barrier()


def test_one_dimensional_sweep_draws_line_plots(comm, shared):
    from scaffoldfem.viz.sweep_plots import plot_sweep

    plan = load_sweep(write(shared / "s.toml", f"""
base = "{BASELINE}"
[grid]
"scaffold.solid_modulus" = ["1 kPa", "10 kPa", "100 kPa", "1000 kPa"]
""", comm))
    out = shared / "out"
    run_sweep(plan, out, comm, runner=fake_runner, quiet=True)
    if comm.rank == 0:
        import imageio.v3 as iio

        paths = plot_sweep(out)
        img = iio.imread(out / "figures" / "sweep_axons_crossing_fraction.png")[..., :3]
        # the tab:blue line is drawn
        px = img.reshape(-1, 3).astype(int)
        assert np.sum(np.all(np.abs(px - [31, 119, 180]) < 25, axis=1)) > 100
        assert len(paths) >= 4
    comm.barrier()


# ---------------------------------------------------------------------------
# The real pipeline on the coarse mesh


def test_a_sweep_holds_the_run_handlers_between_cases_and_gives_them_back(comm):
    """Between a sweep's cases SIGTERM still sets a stop flag (the default would kill a
    rank between cases while the scheduler's other ranks checkpoint); after the sweep,
    the handlers from before it are back."""
    before = signal.getsignal(signal.SIGTERM)
    with signals_held():
        case = Progress(comm, 1.0, quiet=True)
        case.restore_signals()  # a case ends
        assert signal.getsignal(signal.SIGTERM) == case._on_signal
    assert signal.getsignal(signal.SIGTERM) is before
    alone = Progress(comm, 1.0, quiet=True)  # a run on its own gives them back at once
    alone.restore_signals()
    assert signal.getsignal(signal.SIGTERM) is before


def test_real_run_study_cases(comm, shared):
    """Two cases of the real pipeline sharing one cached mesh (one short step; the
    4.5k-vertex mesh of test_api: 1.4 s per case instead of 6.6 s on `coarse`)."""
    plan = load_sweep(write(shared / "s.toml", f"""
base = "{BASELINE}"
[set]
"geometry.resolution" = "0.4 mm"
"geometry.mesh.curvature_points" = 12
"geometry.mesh.num_threads" = 1
"axons.cue_smoothing" = "0.3 mm"
"time.duration" = "0.5 day"
"time.dt" = "0.5 day"
"axons.count" = 10
"output.figures" = false
# Mechanics off keeps the test short (its metrics are then 0 or absent → NaN).
"mechanics.enabled" = false
[grid]
"scaffold.porosity" = [0.7, 0.9]
""", comm))
    out = shared / "real"
    before = signal.getsignal(signal.SIGTERM)
    summary = run_sweep(plan, out, comm, ranks_per_case=1, quiet=True)
    assert (summary.total, summary.ran, summary.failures) == (2, 2, [])
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back
    df = results(out).set_index("case_id")
    assert sorted(df.index) == [c.id for c in plan.cases]
    for case in plan.cases:
        cdir = out / "cases" / case.id
        assert (cdir / "DONE").exists()
        assert (cdir / "study.resolved.toml").read_text() == case.study.to_toml()
        row = df.loc[case.id]
        metrics = json.loads((cdir / "metrics.json").read_text())
        assert row.status == "done" and row.ranks == 1
        assert row["axons.crossing_fraction"] == metrics["axons"]["crossing_fraction"]
        strain = metrics.get("mechanics", {}).get("interface_strain_jump", {}).get("p95")
        if strain is None:  # not computed: NaN, not an error
            assert math.isnan(row["mechanics.interface_strain_jump.p95"])
        else:
            assert row["mechanics.interface_strain_jump.p95"] == pytest.approx(strain)
        assert 0.0 < row["scaffold.mass_remaining_fraction"] <= 1.0
        assert row["species.BDNF.lesion_auc_ng_day_per_mL"] > 0.0
        assert row["mesh.cells"] == df["mesh.cells"].iloc[0]  # one cached mesh for both
    # Porosity is what was varied: the final scaffold porosity follows it.
    assert df["scaffold.porosity_mean_final"].iloc[1] > df["scaffold.porosity_mean_final"].iloc[0]


# ---------------------------------------------------------------------------
# Subprocesses: ``scaffoldfem sweep`` under mpiexec -n 2 (serial pass only)


def sweep_cli(*args: str, nproc: int = 2, env: dict | None = None, timeout: float = 300):
    """``scaffoldfem sweep ARGS`` with the fake runner (the hidden ``--runner`` hook)."""
    cmd = [sys.executable, "-m", "scaffoldfem", "sweep", *args,
           "--runner", f"{Path(__file__).resolve()}:fake_runner"]
    if nproc > 1:
        cmd = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(nproc), *cmd]
    e = clean_env()
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)


@pytest.fixture(scope="module")
def single_thread_sweep(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """``mpiexec -n 2 scaffoldfem sweep`` of SWEEP_2x2 on two groups of one rank under
    MPI_THREAD_SINGLE (no coordinator thread: rank 0 serves the queue between its
    cases), with the figures the command line injects: the result, the sweep
    directory and the case log, read by the two tests below (one run for both; the
    threaded queue is run in process by the MPI pass, test_sweep_runs_every_case_once)."""
    tmp = tmp_path_factory.mktemp("cli_sweep")
    path = write(tmp / "s.toml", SWEEP_2x2)
    log = tmp / "log.txt"
    r = sweep_cli(str(path), "--out", str(tmp / "k1"), "--ranks-per-case", "1",
                  env={"FAKE_LOG": str(log), "FAKE_SLEEP": "0.3",
                       "MPI4PY_RC_THREAD_LEVEL": "single"})
    return r, tmp / "k1", log


@serial_only
def test_mpi_sweep_two_groups_then_one(tmp_path, single_thread_sweep):
    path = write(tmp_path / "s.toml", SWEEP_2x2)
    r, k1_dir, log = single_thread_sweep
    assert r.returncode == 0, r.stderr
    assert "4/4 cases done" in r.stdout
    k1 = results(k1_dir)
    assert len(k1) == 4 and len(list((k1_dir / "cases").iterdir())) == 4
    assert set(k1.ranks) == {1}
    # Two groups of one rank: world rank 0 coordinates AND computes.
    assert {line.split()[2] for line in log.read_text().splitlines()} == {"world_rank=0",
                                                                          "world_rank=1"}
    # The command line injects the pictures: plot_run into every case, the sweep's after.
    for case_dir in (k1_dir / "cases").iterdir():
        assert (case_dir / "on_done.txt").read_text() == "scaffoldfem.api.running.draw_run\n"
    assert (k1_dir / "figures" / "sweep_axons_crossing_fraction.png").is_file()
    # One group of two ranks (its case pictures are k1's business: not drawn again).
    r = sweep_cli(str(path), "--out", str(tmp_path / "k2"), "--ranks-per-case", "2",
                  "--set", "output.figures=false")
    assert r.returncode == 0, r.stderr
    k2 = results(tmp_path / "k2")
    assert set(k2.ranks) == {2}
    np.testing.assert_allclose(k1["axons.crossing_fraction"], k2["axons.crossing_fraction"],
                               rtol=1e-12)
    check_fake_metrics(k1)


@serial_only
def test_without_thread_multiple_rank0_serves_between_its_cases(single_thread_sweep):
    """MPI_THREAD_SINGLE: no coordinator thread; the queue still feeds both groups."""
    r, out, log = single_thread_sweep
    assert r.returncode == 0, r.stderr
    df = results(out)
    assert len(df) == 4 and set(df.status) == {"done"}
    check_fake_metrics(df)
    assert {line.split()[2] for line in log.read_text().splitlines()} == {"world_rank=0",
                                                                          "world_rank=1"}


@serial_only
def test_sigkill_mid_sweep_then_rerun_completes(tmp_path):
    path = write(tmp_path / "s.toml", SWEEP_2x2)
    out, log = tmp_path / "out", tmp_path / "log.txt"
    # No case pictures (in both runs: the same plan), they are not what is tested here.
    nofig = ("--set", "output.figures=false")
    r = sweep_cli(str(path), "--out", str(out), *nofig,
                  env={"FAKE_LOG": str(log), "FAKE_KILL_AFTER": "2", "FAKE_SLEEP": "0.2"})
    assert r.returncode != 0
    done_before = {p.parent.name for p in (out / "cases").glob("*/DONE")}
    assert 2 <= len(done_before) < 4
    first = log.read_text().splitlines()
    r = sweep_cli(str(path), "--out", str(out), *nofig, env={"FAKE_LOG": str(log)})
    assert r.returncode == 0, r.stderr
    second = [line.split() for line in log.read_text().splitlines()[len(first):]]
    assert not {s[0] for s in second} & done_before  # nothing done is recomputed
    started = {line.split()[0] for line in first}
    assert all(s[1] == "resume=True" for s in second if s[0] in started)
    df = results(out)
    assert sorted(df.case_id) == sorted(p.name for p in (out / "cases").iterdir())
    assert len(df) == 4 and df.case_id.is_unique and set(df.status) == {"done"}
    check_fake_metrics(df)


def test_invalid_case_refuses_before_running_anything(comm, shared, monkeypatch):
    """``scaffoldfem sweep`` refusing, in this process (a refusal needs no process of
    its own): on one rank in the serial pass, on two in the MPI pass."""
    path = write(shared / "s.toml", SWEEP_2x2.replace("[0.7, 0.9]", "[0.7, 1.5]")
                 + '\n[[cases]]\nid = "neg"\n"scaffold.solid_modulus" = "-3 kPa"\n', comm)
    log = shared / "log.txt"
    monkeypatch.setenv("FAKE_LOG", str(log))
    # This module as already imported (a FILE.py spec would execute it again).
    r = cli_in_process("sweep", str(path), "--out", str(shared / "out"),
                       "--runner", f"{__name__}:fake_runner")
    assert r.returncode == 2
    err = "".join(comm.allgather(r.stderr)).splitlines()  # every rank's, as mpiexec's
    assert "3 of 5 cases are invalid; nothing was run" in err[0]
    assert sorted(line.split(":")[0] for line in err[1:]) == [
        "c002-porosity1.5-solid_modulus1kPa", "c003-porosity1.5-solid_modulus100kPa", "c004-neg"]
    assert len(err) == 4  # printed once (rank 0), not per rank
    assert not log.exists() and not (shared / "out").exists()


def test_crossing_error_bars_are_wilson_intervals_of_the_counts():
    """Sweep figures draw the crossing fraction with its Wilson 95 % interval: per case,
    and from pooled counts where cases share a parameter value; other metrics get none."""
    import pandas as pd

    from scaffoldfem.axons.crossing import wilson_interval
    from scaffoldfem.viz.sweep_plots import _proportions

    df = pd.DataFrame({"p": [1.0, 1.0, 2.0], "axons.crossed": [30, 50, 0],
                       "axons.seeded": [100, 100, 40], "axons.crossing_fraction": [0.3, 0.5, 0.0],
                       "pain_risk.score": [0.1, 0.2, 0.3]})
    none_by, per_case_p, per_case = _proportions(df, "axons.crossing_fraction")
    assert none_by is None and per_case_p == pytest.approx([0.3, 0.5, 0.0])
    lo, hi = wilson_interval(50, 100)
    assert per_case.shape == (2, 3)
    assert per_case[:, 1] == pytest.approx([0.5 - lo, hi - 0.5])
    assert per_case[0, 2] == 0.0 and per_case[1, 2] > 0.05  # 0 of 40: one-sided, not zero
    values, pooled_p, pooled = _proportions(df, "axons.crossing_fraction", by="p")
    assert values.tolist() == [1.0, 2.0] and pooled_p == pytest.approx([0.4, 0.0])
    lo, hi = wilson_interval(80, 200)  # p = 1: 30 + 50 of 100 + 100
    assert pooled[:, 0] == pytest.approx([0.4 - lo, hi - 0.4])
    assert pooled[1, 0] < per_case[1, 0]  # pooling narrows the interval
    assert _proportions(df, "pain_risk.score") is None
    assert _proportions(df.drop(columns="axons.seeded"), "axons.crossing_fraction") is None
