"""A whole run: the run-directory contract, mass balance, rank independence,
refusal to overwrite, and kill/SIGTERM + resume (also on another rank count; the
kill is of one rank of two, which must end the whole job)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, clean_env, cli_in_process, run_cli, serial_only
from mpi4py import MPI

from scaffoldfem.config.study import load_study
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.model.state import ModelState
from scaffoldfem.run.checkpoint import StateMap

BASELINE = ROOT / "studies" / "baseline.toml"
#: A small, quick version of the baseline (same physics, coarse mesh, 2 days).
TINY = [
    'geometry.resolution="0.35 mm"',
    'geometry.cord.length="6 mm"',
    'time.duration="2 day"',
    'time.dt="0.5 day"',
    'output.interval="1 day"',
    'output.checkpoint_interval="1 day"',
    "axons.count=40",
    "output.figures=false",
    # Refresh α, D (and re-assemble) several times in 2 days, so that bookkeeping
    # across coefficient refreshes is part of every balance check below.
    "time.coefficient_tolerance=0.001",
    # The cue smoothing length must span 2 cells where regions meet on this mesh.
    'axons.cue_smoothing="0.2 mm"',
    # Growth from day 0 (the default die-back delay is 7 days), so the cones move
    # in these 2 days and the rank-agreement and resume checks cover them.
    'axons.dieback_delay="0 day"',
    'axons.seeding_window="1 day"',
    # Every kind of pool the state holds, so that rank agreement, resume and kill
    # cover them: affinity binding (bound <-> free exchange), a ROS-cleavable tether
    # and a scavenger consuming ROS (the default BDNF is in PLGA microspheres).
    "species.GDNF.carriers=[{preset='heparin_fibrin', loading='2000 ng/mL'}]",
    "species.NT3.carriers=[{preset='ros_responsive', loading='2000 ng/mL'}]",
    "scavengers=[{amount='2000 ng'}]",
    # The host's answer (issue 12): tissue ingrowth with cavitation (hydrolysis fast
    # enough that polymer is lost within the run), a second graft cohort placed inside a step
    # and between checkpoints, and a ChABC bolus digesting the forming CSPG scar.
    # (The front runs at 3x the default speed so that the lesion is half filled
    # after the first checkpoint: the resumed runs must set that time too.)
    "ingrowth.enabled=true", "ingrowth.front_speed='0.3 mm/day'",
    "scaffold.hydrolysis_rate='0.5 1/day'",
    "cells.cohorts=[{name='graft', secretion={GDNF='5e-7 ng/cell/day'}},"
    " {name='late', transplant_time='1.25 day', regions=['channel'],"
    " secretion={BDNF='1e-6 ng/cell/day'}}]",
    "chabc.doses=[{region='scar', start='0.5 day', amount='50 ng'}]",
]


def _sets(overrides: list[str]) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


#: Calls of the in-process run's ``on_done`` hook: (directory, DONE existed, metrics existed).
ON_DONE: list[tuple[Path, bool, bool]] = []


def _failing_figures(path: Path, comm) -> None:
    """Stand-in for api.running.draw_run that records its call, then fails like a
    headless matplotlib would: the run must finish anyway."""
    ON_DONE.append((Path(path), (path / "DONE").exists(), (path / "metrics.json").exists()))
    assert comm.size == MPI.COMM_WORLD.size
    raise RuntimeError("no display")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One in-process run on COMM_WORLD (1 or 2 ranks), figures on through the hook."""
    from scaffoldfem.run.loop import run_study

    comm = MPI.COMM_WORLD
    out = comm.bcast(str(tmp_path_factory.mktemp("run")) if comm.rank == 0 else None, root=0)
    study = load_study(BASELINE, [*TINY, "output.figures=true"])
    rc = run_study(study, Path(out) / "r", comm, quiet=True, on_done=_failing_figures)
    assert rc == 0
    return Path(out) / "r"


def test_contract_files_present_and_consistent(run_dir):
    for name in (
        "study.resolved.toml",
        "provenance.json",
        "axons.vtp",
        "timeseries.csv",
        "regions.csv",
        "centerline.csv",
        "metrics.json",
        "DONE",
        "fields/final.vtu",
    ):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "fields").glob("*.bp")) or any((run_dir / "fields").glob("*.xdmf"))
    assert len(list((run_dir / "checkpoints").glob("ckpt_*.npz"))) == 2  # two kept
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ts = pd.read_csv(run_dir / "timeseries.csv")
    assert list(ts["t_day"]) == pytest.approx([0, 1, 2])
    for name, sp in metrics["species"].items():
        assert sp["mass_balance_rel_error"] < 1e-8, name
        assert ts[f"mass_{name}_ng"].iloc[-1] == pytest.approx(sp["final_mass_ng"], rel=1e-9)
    # BDNF is loaded in the scaffold and released: the balance is not trivially zero.
    bdnf = ts[[c for c in ts.columns if c.endswith("_BDNF_ng")]].iloc[-1]
    assert bdnf["released_BDNF_ng"] > 0 and bdnf["decayed_BDNF_ng"] > 0
    assert ts["scaffold_mass_fraction"].iloc[-1] == pytest.approx(
        metrics["scaffold"]["mass_remaining_fraction"], rel=1e-9
    )
    assert 0 < metrics["scaffold"]["mass_remaining_fraction"] < 1
    assert metrics["mesh"]["ranks"] == MPI.COMM_WORLD.size
    assert metrics["axons"]["seeded"] == 40
    assert {"max_von_mises_kPa", "max_interface_strain_jump"} <= set(metrics["mechanics"])


def test_on_done_hook_runs_on_every_rank_before_done(run_dir):
    # Every rank draws its share of the figures, once metrics.json is there (on every
    # rank: rank 0 wrote it before the barrier) and before DONE.
    assert ON_DONE == [(run_dir, False, True)]
    assert (run_dir / "DONE").is_file()  # the hook failed: a warning, not a lost run


def _assert_states_close(a: ModelState, b: ModelState, rel: float) -> None:
    assert a.cells.keys() == b.cells.keys() and a.nodes.keys() == b.nodes.keys()
    for kind in ("cells", "nodes"):
        for key, x in getattr(a, kind).items():
            y = getattr(b, kind)[key]
            scale = max(float(np.abs(x).max(initial=0.0)), 1e-300)
            assert np.allclose(x, y, rtol=rel, atol=rel * scale), (kind, key)
    assert a.scalars.keys() == b.scalars.keys()
    for key in ("t", "nstep", "dt_last", "alpha_history_steps", "mech_solves"):
        assert a.scalars[key] == b.scalars[key], key
    for name, tot in a.scalars["totals"].items():
        for term, v in tot.items():
            w = b.scalars["totals"][name][term]
            assert math.isclose(v, w, rel_tol=rel, abs_tol=1e-15), (name, term)


def test_model_state_repeats_a_step_and_maps_to_mesh_indices():
    """ModelState is the whole evolving state: a step taken again after restoring it
    gives the same state (to solver tolerance); its arrays survive the mesh-index
    mapping of the checkpoints exactly; ``with`` frees the solvers on an exception."""
    comm = MPI.COMM_WORLD
    study = load_study(BASELINE, TINY)
    mesh, cells, facets = load_mesh(
        ensure_mesh(study.geometry, comm), comm, ghost_mode="shared_facet"
    )
    with pytest.raises(RuntimeError, match="leaving"):
        with CoupledModel(study, mesh, cells, facets) as model:
            assert model.ensure_mechanics()
            model.step(0.5)
            snap = model.state()
            model.step(0.5)
            first = model.state()
            model.restore(snap)
            _assert_states_close(model.state(), snap, 0.0)
            model.step(0.5)
            _assert_states_close(model.state(), first, 1e-7)
            d = model.disc
            smap = StateMap(d.mesh, d.V, d.Q)
            arrays = comm.bcast(smap.state_to_global(first), root=0)
            _assert_states_close(smap.state_from_global(arrays, first.scalars), first, 0.0)
            raise RuntimeError("leaving the model")
    assert not model.enzymes.members and model.mechanics.solver is None
    assert not any(sp.solvers for sp in model.species.members)


def test_tables_have_every_region_and_field(run_dir):
    reg = pd.read_csv(run_dir / "regions.csv")
    assert list(reg.columns) == ["t_day", "region", "field", "mean", "min", "max"]
    assert {"white_matter", "grey_matter", "scar", "scaffold", "channel"} <= set(reg["region"])
    assert {"BDNF", "MMP-9", "MMP-2", "porosity", "modulus", "von_mises"} <= set(reg["field"])
    # The host's answer: CSPG, ChABC, ingrowth and cavitation, per-cohort densities.
    assert {"cspg", "ChABC", "tissue_fill", "cavitation", "cells_graft", "cells_late"} <= set(
        reg["field"])
    ts = pd.read_csv(run_dir / "timeseries.csv").set_index("t_day")
    late = ts["cells_late_count"]
    assert late.loc[0.0] == 0.0 and late.loc[1.0] == 0.0 and late.loc[2.0] > 0.0
    assert ts["cells_late_secreted_BDNF_ng"].loc[1.0] == 0.0
    assert ts["cells_late_secreted_BDNF_ng"].loc[2.0] > 0.0
    assert ts["chabc_dosed_ng"].loc[0.0] == 0.0 and ts["chabc_dosed_ng"].loc[1.0] == (
        pytest.approx(50.0))
    assert 0.0 < ts["tissue_fill_mean"].loc[2.0] <= 1.0
    assert ts["cavitation_lesion_fraction"].between(0.0, 1.0).all()
    ok = reg.dropna()
    assert (ok["min"] <= ok["mean"] + 1e-9 * abs(ok["mean"]) + 1e-12).all()
    assert (ok["mean"] <= ok["max"] + 1e-9 * abs(ok["mean"]) + 1e-12).all()
    cl = pd.read_csv(run_dir / "centerline.csv")
    assert {"t_day", "z_mm", "BDNF", "porosity"} <= set(cl.columns)
    last = cl[cl["t_day"] == cl["t_day"].max()]
    # BDNF comes from the scaffold: higher at the lesion centre than at the cord ends.
    mid = last.iloc[(last["z_mm"]).abs().argmin()]["BDNF"]
    assert mid > 3 * max(last["BDNF"].iloc[0], last["BDNF"].iloc[-1])


def test_axons_vtp_has_one_polyline_per_seeded_axon(run_dir):
    import pyvista as pv

    poly = pv.read(run_dir / "axons.vtp")
    assert poly.n_lines == 40
    assert {"t_day", "speed_mm_per_day", "region", "c_BDNF"} <= set(poly.point_data.keys())
    assert {"axon_id", "final_state"} <= set(poly.cell_data.keys())
    assert np.all(np.diff(poly.point_data["t_day"][poly.lines[1 : poly.lines[0] + 1]]) >= 0)


def test_field_files_read_back_in_pyvista_and_meshio(run_dir):
    """final.vtu (zlib) reads in meshio and PyVista alike; the sagittal slices (LZ4)
    in PyVista, each with its time, the x = 0 plane and the region of every cell."""
    import meshio
    import pyvista as pv

    grid = pv.read(run_dir / "fields" / "final.vtu")
    m = meshio.read(run_dir / "fields" / "final.vtu")
    assert len(m.points) == grid.n_points > 100
    np.testing.assert_allclose(m.point_data["BDNF"], grid.point_data["BDNF"])
    slices = sorted((run_dir / "fields" / "sagittal").glob("t_*.vtp"))
    assert len(slices) == 3
    for k, path in enumerate(slices):
        sl = pv.read(path)
        assert float(sl.field_data["t_day"][0]) == pytest.approx(k)
        assert sl.n_cells > 50 and np.abs(sl.points[:, 0]).max() < 1e-9
        assert set(np.unique(sl.cell_data["region"])) <= set(np.unique(grid.cell_data["region"]))
        assert "BDNF" in sl.point_data


def test_provenance(run_dir):
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["versions"]["dolfinx"].startswith("0.")
    assert prov["mpi_size"] == MPI.COMM_WORLD.size
    assert len(prov["study_sha256"]) == 64 and len(prov["mesh_sha256"]) == 64
    assert prov["peak_memory"]["max_rank_mb"] > 10
    assert {"mesh", "setup", "solve", "total"} <= set(prov["timing_s"])


# ---------------------------------------------------------------- subprocess runs


def _metrics(d: Path) -> dict:
    return json.loads((d / "metrics.json").read_text())


def _flat(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        if k in ("timing_s", "mesh"):
            continue
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def _assert_same(a: dict, b: dict, rel: float = 1e-6) -> None:
    fa, fb = _flat(a), _flat(b)
    assert fa.keys() == fb.keys()
    bad = {
        k: (fa[k], fb[k]) for k in fa if not math.isclose(fa[k], fb[k], rel_tol=rel, abs_tol=1e-9)
    }
    assert not bad, bad


@pytest.fixture(scope="module")
def serial_reference(run_dir):
    """The uninterrupted 1-rank run the subprocess runs are compared with: in the
    serial pass, :func:`run_dir` is one (in this process, the same TINY study; its
    figures on only change what is drawn, not a number in metrics.json), so the
    reference costs no second run."""
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("subprocess runs happen in the serial pass")
    return run_dir


@serial_only
def test_one_and_two_ranks_agree(serial_reference, tmp_path):
    out = tmp_path / "two"
    r = run_cli("run", str(BASELINE), "--out", str(out), "--quiet", *_sets(TINY), nproc=2)
    assert r.returncode == 0, r.stderr
    _assert_same(_metrics(serial_reference), _metrics(out))


@serial_only
def test_existing_directory_is_refused(serial_reference):
    # A refusal: answered by cli.main in this process (no interpreter start-up).
    r = cli_in_process("run", str(BASELINE), "--out", str(serial_reference), *_sets(TINY))
    assert r.returncode == 2
    assert "already exists" in r.stderr and "--resume" in r.stderr and "Traceback" not in r.stderr


def _start(out: Path, nproc: int = 1) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "scaffoldfem",
        "run",
        str(BASELINE),
        "--out",
        str(out),
        "--quiet",
        *_sets(TINY),
    ]
    if nproc > 1:
        cmd = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(nproc), *cmd]
    return subprocess.Popen(
        cmd, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _wait_for_checkpoint(out: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.time()
    while not list((out / "checkpoints").glob("ckpt_*.json")):
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() - t0 < timeout
        time.sleep(0.2)


def _interrupt(out: Path, sig: int) -> subprocess.Popen:
    """Start a run, send ``sig`` to it once its first checkpoint exists, wait for it."""
    proc = _start(out)
    _wait_for_checkpoint(out, proc)
    os.killpg(proc.pid, sig)
    proc.wait(timeout=120)
    return proc


def _rank_pids(out: Path) -> dict[int, int]:
    """PIDs of the MPI ranks running into ``out``, by rank (hydra gives each rank its
    own process group, so they are found by command line and ``PMI_RANK``)."""
    ranks = {}
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone
            continue
        if str(out).encode() in cmdline and b"scaffoldfem" in cmdline and b"run" in cmdline:
            for var in env:
                if var.startswith(b"PMI_RANK="):
                    ranks[int(var.split(b"=", 1)[1])] = int(entry.name)
    return ranks


@serial_only
def test_one_rank_killed_ends_the_job_then_resume_on_one_rank_matches(serial_reference, tmp_path):
    """SIGKILL of one of two ranks mid-run: the other exits within seconds (the
    launcher tears the job down; nobody waits in a collective), no DONE; --resume on
    another rank count completes the run with the uninterrupted run's metrics."""
    out = tmp_path / "killed"
    proc = _start(out, nproc=2)
    try:
        _wait_for_checkpoint(out, proc)
        ranks = _rank_pids(out)
        assert set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGKILL)
        t0 = time.time()
        proc.wait(timeout=60)
        took = time.time() - t0
        left = _rank_pids(out)
    finally:  # a hang must not outlive the test
        for pid in _rank_pids(out).values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if (out / "DONE").exists():  # finished before the signal arrived: nothing to test
        return
    assert proc.returncode != 0 and not left and took < 30, (proc.returncode, left, took)
    r = run_cli("run", str(BASELINE), "--out", str(out), "--resume", "--quiet", *_sets(TINY))
    assert r.returncode == 0, r.stderr
    _assert_same(_metrics(serial_reference), _metrics(out))
    ts = pd.read_csv(out / "timeseries.csv")
    assert list(ts["t_day"]) == pytest.approx([0, 1, 2])  # no duplicated rows


@serial_only
def test_sigterm_writes_checkpoint_and_resumes(serial_reference, tmp_path):
    out = tmp_path / "term"
    proc = _interrupt(out, signal.SIGTERM)
    if (out / "DONE").exists():  # finished before the signal arrived: nothing to test
        return
    assert proc.returncode == 143
    r = run_cli("run", str(BASELINE), "--out", str(out), "--resume", "--quiet", *_sets(TINY))
    assert r.returncode == 0, r.stderr
    _assert_same(_metrics(serial_reference), _metrics(out))


@serial_only
def test_diverging_solver_cuts_the_step_then_exits_3(tmp_path):
    """A solve that cannot converge cuts the step; below dt_min the run stops with
    exit code 3, a message naming field, time and reason, and the last good state."""
    out = tmp_path / "fail"
    bad = [
        *TINY,
        "solver.transport.ksp_max_it=1",
        "solver.transport.ksp_rtol=1e-14",
        'time.dt_min="0.2 day"',
    ]
    r = run_cli("run", str(BASELINE), "--out", str(out), "--quiet", *_sets(bad))
    assert r.returncode == 3, r.stderr
    msg = r.stderr.strip().splitlines()[-1]
    # ROS is the first field solved in a step
    assert "field 'ROS'" in msg and "t = 0.25" in msg
    assert "DIVERGED_MAX_IT" in msg and "dt_min" in msg
    assert "Traceback" not in r.stderr
    assert list((out / "checkpoints").glob("ckpt_*.npz")) and not (out / "DONE").exists()
