"""Dorsal-horn exposure and the KCC2 pain-risk index (issue 12, item 4).

The dorsal-horn metrics are over a fixed band around the lesion, so doubling the
modelled cord leaves them unchanged (to 2 %) while the old grey-matter AUC roughly
halves; the region is the dorsal cap of grey matter; the KCC2 law matches its closed
form; the accumulators resume from a checkpoint (kill + resume on another rank count
gives the uninterrupted run's numbers)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import clean_env, cli_in_process, run_cli, serial_only
from mpi4py import MPI

from scaffoldfem.config.dorsal_horn import DorsalHornConfig, dorsal_cut, dorsal_horn_area
from scaffoldfem.config.geometry_sections import GreyMatterConfig
from scaffoldfem.config.study import load_study
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.model.exposure import RegionMeans
from scaffoldfem.physics.kcc2 import kcc2_closed_form, kcc2_drive, kcc2_step
from scaffoldfem.run.metrics import Exposure, WindowExposure
from scaffoldfem.run.pain import DorsalHornRisk, time_above

#: A cheap study: the defaults on a coarse mesh, 3 days, window = the 3 days.
CHEAP = [
    'geometry.resolution="0.35 mm"',
    'time.dt="0.5 day"',
    'exposure.window_start="0 day"',
    'exposure.window_end="3 day"',
    'exposure.dorsal_horn.band="1.5 mm"',
]
KCC2 = {"rate_down": 1.0, "rate_recovery": 0.2, "occupancy_half": 0.3, "hill": 2.0}


# ------------------------------------------------------------------ the law (no mesh)
def test_kcc2_law_matches_its_closed_form():
    # Hill drive by hand: g(occ_half) = 1/2; g(0.6) = 0.36/(0.36 + 0.09) = 0.8.
    assert kcc2_drive(0.3, 0.3, 2.0) == pytest.approx(0.5)
    assert kcc2_drive(0.6, 0.3, 2.0) == pytest.approx(0.8)
    # The closed form solves dK/dt = k_down g (1 - K) - k_rec K (central difference).
    occ, t, e = 0.6, 1.3, 1e-5
    K = kcc2_closed_form(t, occ, **KCC2)
    dK = (kcc2_closed_form(t + e, occ, **KCC2) - kcc2_closed_form(t - e, occ, **KCC2)) / (2 * e)
    assert dK == pytest.approx(1.0 * 0.8 * (1 - K) - 0.2 * K, rel=1e-7)
    # K_inf = 0.8/(0.8 + 0.2) = 0.8, reached with rate 1/day.
    assert kcc2_closed_form(50.0, occ, **KCC2) == pytest.approx(0.8)
    assert K == pytest.approx(0.8 * (1 - math.exp(-1.3)))
    # Constant occupancy: any step sequence gives the closed form; recovery after it.
    Ks, tt = 0.0, 0.0
    for h in (0.1, 0.5, 0.25, 1.0, 0.15):
        Ks, tt = kcc2_step(Ks, occ, occ, h, **KCC2), tt + h
        assert Ks == pytest.approx(kcc2_closed_form(tt, occ, **KCC2), rel=1e-12)
    assert kcc2_step(Ks, 0.0, 0.0, 2.0, **KCC2) == pytest.approx(Ks * math.exp(-0.4))


def test_time_above_threshold_and_region_area():
    # o rises 0 -> 1 over [0, 2]: above 0.25 from t = 0.5; window [1, 3] keeps [1, 2].
    assert time_above(0.0, 1.0, 0.0, 2.0, 0.0, 9.0, 0.25) == pytest.approx(1.5)
    assert time_above(0.0, 1.0, 0.0, 2.0, 1.0, 3.0, 0.25) == pytest.approx(1.0)
    assert time_above(1.0, 0.0, 0.0, 2.0, 0.0, 9.0, 0.25) == pytest.approx(1.5)
    assert time_above(0.1, 0.2, 0.0, 2.0, 0.0, 9.0, 0.25) == 0.0
    # Elliptic cap of depth d: area = a b (acos u - u sqrt(1 - u²)), u = 1 - d/b.
    g = GreyMatterConfig(shape="ellipse", semi_axis_x="0.7 mm", semi_axis_y="0.5 mm")
    u = 1 - 0.2 / 0.5
    exact = 0.7 * 0.5 * (math.acos(u) - u * math.sqrt(1 - u * u))
    assert dorsal_horn_area(g, 0.2) == pytest.approx(exact, rel=1e-5)
    assert dorsal_cut(g, 0.2) == pytest.approx(0.3, abs=1e-6)


def test_missing_ligand_or_region_reports_none_with_a_reason():
    risk = DorsalHornRisk(DorsalHornConfig(ligand="NT4"), 0.0, 3.0)
    risk.add(1.0, 1.0, {"BDNF": {"lesion": 1.0, "occupancy_dorsal_horn": 0.5}})
    m = risk.metrics(["BDNF"])
    assert m["score"] is None and "NT4" in m["reason"]
    # Occupancy 0 -> 0.5 over [0, 1]: above 0.1 from t = 0.2.
    above = risk.species_metrics("BDNF")["time_above_occupancy_threshold_day"]
    assert above == pytest.approx(0.8)
    empty = DorsalHornRisk(DorsalHornConfig(), 0.0, 3.0)
    empty.add(1.0, 1.0, {"BDNF": {"lesion": 1.0}})  # no dorsal-horn keys: no region
    assert empty.metrics(["BDNF"])["kcc2_index_peak"] is None
    assert "no dorsal-horn region" in empty.metrics(["BDNF"])["reason"]


# ------------------------------------------------------------------ on a mesh (1 and 2 ranks)
def _run(study_file: Path, length: str, steps: int = 6, h: float = 0.5):
    """In-process run of ``steps`` steps; returns (window, exposure, model summaries)."""
    comm = MPI.COMM_WORLD
    study = load_study(study_file, [*CHEAP, f'geometry.cord.length="{length}"'])
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    ex = study.exposure
    with CoupledModel(study, mesh, cells, facets) as m:
        exposure = Exposure(study.species)
        window = WindowExposure(exposure.windows, ex.window_start, ex.window_end,
                                dorsal=ex.dorsal_horn)
        resumed = None
        for i in range(steps):
            m.step(h)
            means = m.exposure_means()
            exposure.add(h, m.lesion_means())
            window.add(m.t, h, means)
            if resumed is not None:
                resumed.add(m.t, h, means)
            if i == steps // 2:  # a checkpoint: the state through JSON, then continued
                resumed = WindowExposure(exposure.windows, ex.window_start, ex.window_end,
                                         dorsal=ex.dorsal_horn)
                resumed.restore(json.loads(json.dumps(window.state())))
        d, regions = m.disc, m.regions
        w = regions.w_dorsal
        xyz = d.V.tabulate_dof_coordinates()[: len(w)]
        # Share of the weights on ventral nodes (y < 0): only from large cells cut by the cap.
        ventral = comm.allreduce(float(w[xyz[:, 1] < 0].sum()), op=MPI.SUM) / regions.dorsal_vol
        # A band far above the cord: an empty region gives no dorsal keys.
        none = RegionMeans(d, study.geometry.lesion_z(), 1.0, dorsal_y=10.0)
        empty_keys = none.exposure({"BDNF": m.species.members[0].c}, {"BDNF": 27.0}, {})
        info = {"summary": regions.dorsal_horn_summary(), "ventral": ventral,
                "grey": d.volumes["grey_matter"], "empty": empty_keys["BDNF"],
                "geometry": study.geometry}
    assert window.metrics("BDNF") == resumed.metrics("BDNF")
    assert window.dorsal.metrics(["BDNF"]) == resumed.dorsal.metrics(["BDNF"])
    return window, exposure, info


@pytest.fixture(scope="module")
def study_file():
    # The defaults (every section at its documented value); the same file on every rank.
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "scaffoldfem_test_dorsal_horn.toml"
    if MPI.COMM_WORLD.rank == 0:
        path.write_text("# defaults\n")
    MPI.COMM_WORLD.barrier()
    return path


def test_dorsal_horn_metrics_do_not_depend_on_cord_length(study_file):
    w1, e1, i1 = _run(study_file, "8 mm")
    w2, e2, i2 = _run(study_file, "16 mm")
    s = i1["summary"]
    # The region: dorsal in grey matter, both horns, the analytic cap volume (the
    # 0.35 mm mesh facets the horn tips: within 12 %), inside the band, in the cord.
    geom = i1["geometry"]
    y_cut = dorsal_cut(geom.grey_matter, 0.2)
    assert s["y_cut_mm"] == pytest.approx(y_cut)
    grey_len = 2 * (1.5 - geom.scar.thickness)  # band minus scar, both sides
    analytic = dorsal_horn_area(geom.grey_matter, 0.2) * grey_len
    assert s["volume_mm3"] == pytest.approx(analytic, rel=0.12)
    assert s["volume_mm3"] < 0.2 * i1["grey"]
    x, y, z = s["centroid_mm"]
    assert y > y_cut and abs(x) < 0.05 and abs(z) < 0.1  # symmetric: both horns, both sides
    assert i1["ventral"] < 0.05, i1["ventral"]
    assert s["band_within_cord"] and i2["summary"]["band_within_cord"]
    assert "dorsal_horn" not in i1["empty"] and "host" in i1["empty"]
    # L vs 2L: dorsal-horn metrics within 2 %; the grey-matter AUC is not (diluted).
    a, b = w1.metrics("BDNF"), w2.metrics("BDNF")
    for k in ("dorsal_horn_auc_ng_day_per_mL", "mean_occupancy_dorsal_horn",
              "occupancy_dorsal_horn_auc_day", "time_above_occupancy_threshold_day"):
        assert a[k] > 0 and b[k] == pytest.approx(a[k], rel=0.02), k
    p1, p2 = w1.dorsal.metrics(["BDNF"]), w2.dorsal.metrics(["BDNF"])
    assert 0.05 < p1["score"] < 1 and p2["score"] == pytest.approx(p1["score"], rel=0.02)
    assert p2["kcc2_index_peak"] == pytest.approx(p1["kcc2_index_peak"], rel=0.02)
    g1 = e1.metrics("BDNF")["grey_matter_auc_ng_day_per_mL"]
    g2 = e2.metrics("BDNF")["grey_matter_auc_ng_day_per_mL"]
    assert g2 < 0.6 * g1


# ------------------------------------------------------------------ kill + resume, 1 -> 2 ranks
def _args(out: Path, study: Path) -> list[str]:
    sets = [*CHEAP, 'geometry.cord.length="8 mm"', 'time.duration="3 day"',
            'output.interval="1 day"', 'output.checkpoint_interval="1 day"', "axons.enabled=false",
            "output.figures=false"]  # (axons are not what is tested here)
    return ["run", str(study), "--out", str(out), "--quiet", *[x for s in sets
                                                             for x in ("--set", s)]]


def _pain(out: Path) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    return {"pain": {k: v for k, v in m["pain_risk"].items() if k != "dorsal_horn"},
            "BDNF": m["species"]["BDNF"]["evaluation_window"]}


def _sigterm_after_first_checkpoint(out: Path, proc: subprocess.Popen) -> None:
    """SIGTERM ``proc`` once its first checkpoint (t = 1 day of 3) exists; wait for it."""
    t0 = time.time()
    while not list((out / "checkpoints").glob("ckpt_*.json")):
        assert proc.poll() is None and time.time() - t0 < 120, proc.stderr.read().decode()
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)


@serial_only
def test_sigterm_then_resume_on_two_ranks_gives_the_same_pain_risk(study_file, tmp_path):
    out = tmp_path / "term"
    proc = subprocess.Popen([sys.executable, "-m", "scaffoldfem", *_args(out, study_file)],
                            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    # The reference is run in this process while the subprocess starts and runs to its
    # first checkpoint (a thread watches for it and signals, so the signal comes on time
    # whatever the reference is doing); neither waits for the other.
    with ThreadPoolExecutor(1) as pool:
        watched = pool.submit(_sigterm_after_first_checkpoint, out, proc)
        ref = tmp_path / "ref"
        r = cli_in_process(*_args(ref, study_file))  # the reference: no subprocess needed
        assert r.returncode == 0, r.stderr
        watched.result()  # (its assertion, if it failed)
    a = _pain(ref)
    if not (out / "DONE").exists():  # else it finished before the signal: nothing to resume
        assert proc.returncode == 143
        r = run_cli(*_args(out, study_file), "--resume", nproc=2)
        assert r.returncode == 0, r.stderr
    b = _pain(out)
    assert a["pain"]["score"] > 0.05
    for part in ("pain", "BDNF"):
        for k, v in a[part].items():
            if isinstance(v, float):
                assert b[part][k] == pytest.approx(v, rel=1e-6), (part, k)
