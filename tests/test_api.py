"""The Python API (scaffoldfem.api): studies with overrides, Results, run.

Study overrides must mean exactly what ``--set`` means; Results is checked on a run
directory written here file by file (known values), and once on a real tiny run
made with :func:`scaffoldfem.api.run` on COMM_WORLD (1 or 2 ranks).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pyvista as pv
from conftest import ROOT

from scaffoldfem.api import Results, RunDirError, Study, StudyError, plot, run
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import UsageError

BASELINE = ROOT / "studies" / "baseline.toml"


# ---------------------------------------------------------------------------
# Study.from_toml / Study.default


def test_from_toml_overrides_equal_set():
    api = Study.from_toml(
        BASELINE,
        geometry__resolution="coarse",
        geometry__lesion__length="1.5 mm",
        overrides={"species.BDNF.half_life": "2 h", "scaffold": {"porosity": 0.85},
                   "species.1.window_high": "50 ng/mL"},
    )
    cli = load_study(BASELINE, [
        "geometry.resolution=coarse",
        'geometry.lesion.length="1.5 mm"',
        'species.BDNF.half_life="2 h"',
        "scaffold.porosity=0.85",
        'species.1.window_high="50 ng/mL"',
    ])
    assert api.to_dict() == cli.to_dict() and api.digest() == cli.digest()
    assert api.geometry.resolution == "coarse" and api.scaffold.porosity == 0.85
    assert next(s for s in api.species if s.name == "BDNF").half_life == pytest.approx(2 / 24)
    # No override: the file as it is (the baseline is the defaults).
    assert Study.from_toml(BASELINE).to_dict() == Study.default().to_dict() == Study().to_dict()


def test_default_overrides_equal_set():
    api = Study.default(time__duration="7 day", axons__count=20, output__figures=False)
    cli = load_study(None, ['time.duration="7 day"', "axons.count=20", "output.figures=false"])
    assert api.to_dict() == cli.to_dict()
    assert (api.time.duration, api.axons.count, api.output.figures) == (7.0, 20, False)


@pytest.mark.parametrize(("kwargs", "line"), [
    ({"scaffold__porosityy": 0.8}, "scaffold.porosityy: unknown key"),
    ({"overrides": {"species.BDFN.half_life": "2 h"}},
     "species.BDFN.half_life: no list element 'BDFN'"),
    ({"scaffold__porosity": 1.5}, "scaffold.porosity: input should be less than 1"),
    ({"geometry__lesion__length": 2}, "geometry.lesion.length: needs a unit"),
    ({"scaffold__porosity__x": 1}, "scaffold.porosity:"),  # a value, not a table
    ({"overrides": {"time.duration": "7 day"}, "time__duration": "8 day"},
     "time.duration: given twice"),
])
def test_bad_override_is_one_line_naming_the_key(kwargs, line):
    with pytest.raises(StudyError) as err:
        Study.default(**kwargs)
    assert len(err.value.lines) == 1, err.value.lines
    assert err.value.lines[0].startswith(line), err.value.lines
    with pytest.raises(StudyError) as err:  # the same through a file
        Study.from_toml(BASELINE, **kwargs)
    assert err.value.lines[0].startswith(line)


def test_every_bad_override_is_reported_at_once():
    with pytest.raises(StudyError) as err:
        Study.default(scaffold__porosityy=0.8, overrides={"species.X.half_life": "1 h"})
    assert len(err.value.lines) == 1  # a key that addresses nothing stops before validation
    with pytest.raises(StudyError) as err:
        Study.default(scaffold__porosity=1.5, time__duration="-1 day")
    assert sorted(x.split(":")[0] for x in err.value.lines) == ["scaffold.porosity",
                                                                 "time.duration"]


def test_missing_study_file():
    with pytest.raises(StudyError, match="no such study file"):
        Study.from_toml(ROOT / "studies" / "nope.toml")


# ---------------------------------------------------------------------------
# Results on a run directory with known contents


def _polyline_set(paths: list[np.ndarray]) -> pv.PolyData:
    pts = np.vstack(paths)
    lines, start = [], 0
    for p in paths:
        lines += [len(p), *range(start, start + len(p))]
        start += len(p)
    return pv.PolyData(pts, lines=np.asarray(lines, dtype=np.int64))


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run directory holding every file of the contract with known values."""
    out = tmp_path / "run"
    (out / "fields" / "sagittal").mkdir(parents=True)
    study = Study.default(name="known", axons__count=2)
    (out / "study.resolved.toml").write_text(study.to_toml())
    metrics = {"axons": {"seeded": 2, "crossing_fraction": 0.5},
               "species": {"BDNF": {"mass_balance_rel_error": 1e-15}}}
    (out / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"t_day": [0.0, 1.0], "lesion_mean_BDNF_ng_per_mL": [0.0, 3.0]}).to_csv(
        out / "timeseries.csv", index=False)
    pd.DataFrame({"t_day": [1.0], "region": ["scaffold"], "field": ["BDNF"], "mean": [3.0],
                  "min": [1.0], "max": [5.0]}).to_csv(out / "regions.csv", index=False)
    pd.DataFrame({"t_day": [1.0, 1.0], "z_mm": [-1.0, 1.0], "BDNF": [1.0, 2.0]}).to_csv(
        out / "centerline.csv", index=False)
    grid = pv.ImageData(dimensions=(3, 3, 3)).cast_to_unstructured_grid()
    grid.point_data["BDNF"] = np.arange(grid.n_points, dtype=float)
    grid.cell_data["region"] = np.full(grid.n_cells, 4, dtype=np.int32)
    grid.save(out / "fields" / "final.vtu")
    for i, t in enumerate((0.0, 2.5)):
        sl = grid.slice(normal="x", origin=(1.0, 1.0, 1.0))
        sl.field_data["t_day"] = np.array([t])
        sl.save(out / "fields" / "sagittal" / f"t_{i:04d}.vtp")
    # Axon 7: 3-4-5 triangle legs along x then z (length 7); axon 9: one step of 2 in z.
    axons = _polyline_set([np.array([[0, 0, -2], [3, 0, -2], [3, 0, 2.0]]),
                           np.array([[0, 0, -1], [0, 0, 1.0]])])
    axons.point_data["t_day"] = np.array([0.0, 1.0, 2.0, 0.0, 1.5])
    axons.cell_data["axon_id"] = np.array([7, 9], dtype=np.int64)
    axons.cell_data["final_state"] = np.array([1, 2], dtype=np.int32)  # crossed, stalled
    axons.cell_data["crossed"] = np.array([1, 0], dtype=np.int32)
    axons.save(out / "axons.vtp")
    (out / "figures").mkdir()
    (out / "figures" / "timecourses.png").write_bytes(b"png")
    (out / "DONE").write_text("finished\n")
    return out


def test_results_reads_every_file(run_dir):
    res = Results(run_dir)
    assert res.done and "done" in repr(res)
    assert res.study.name == "known" and res.study.axons.count == 2
    assert res.metrics["axons"]["crossing_fraction"] == 0.5
    assert list(res.timeseries["lesion_mean_BDNF_ng_per_mL"]) == [0.0, 3.0]
    assert res.regions.loc[0, "max"] == 5.0 and list(res.centerline["z_mm"]) == [-1.0, 1.0]
    grid = res.final_mesh()
    assert grid.n_points == 27 and set(grid.cell_data["region"]) == {4}
    assert grid.point_data["BDNF"][5] == 5.0
    slices = res.fields()
    assert list(slices) == [0.0, 2.5] and all(s.n_points > 0 for s in slices.values())
    assert res.trajectories.n_lines == 2
    ax = res.axons
    assert list(ax["axon_id"]) == [7, 9] and list(ax["final_state"]) == ["crossed", "stalled"]
    assert list(ax["crossed"]) == [True, False] and list(ax["points"]) == [3, 2]
    np.testing.assert_allclose(ax["length_mm"], [7.0, 2.0])
    np.testing.assert_allclose(ax[["z_start_mm", "z_end_mm", "t_end_day"]].to_numpy(),
                               [[-2, 2, 2.0], [-1, 1, 1.5]])
    assert [p.name for p in res.figures] == ["timecourses.png"]


def test_results_of_an_incomplete_run_and_of_no_run(run_dir, tmp_path):
    (run_dir / "DONE").unlink()
    (run_dir / "metrics.json").unlink()
    res = Results(str(run_dir))
    assert not res.done and len(res.timeseries) == 2  # what is there can be read
    with pytest.raises(RunDirError, match=r"no metrics.json \(the run is incomplete"):
        res.metrics  # noqa: B018
    with pytest.raises(RunDirError, match="no such run directory"):
        Results(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="holds no run"):
        Results(tmp_path / "empty")
    with pytest.raises(UsageError, match="is not a directory"):
        plot(tmp_path / "nowhere")


# ---------------------------------------------------------------------------
# A real run through the API (COMM_WORLD: 1 or 2 ranks)

#: The tiny geometry of meshes/tiny_transection.msh, one day.
TINY = {
    "geometry.resolution": "0.4 mm",
    "geometry.mesh.curvature_points": 12,
    "geometry.mesh.num_threads": 1,
    "time.duration": "1 day",
    "time.dt": "0.5 day",
    "output.interval": "0.5 day",
    "axons.count": 8,
    "axons.cue_smoothing": "0.3 mm",  # >= 2 cells of this coarse mesh
    "mechanics.enabled": False,
}


def test_run_returns_results_and_draws_figures(comm, tmp_path):
    out = Path(comm.bcast(str(tmp_path), root=0)) / "run"  # rank 0's directory for all
    before = signal.getsignal(signal.SIGINT)
    res = run(Study.default(TINY), out, comm, quiet=True)
    assert isinstance(res, Results) and res.done and res.out == out
    # The run's SIGINT/SIGTERM flag handlers are gone: ^C interrupts this session again.
    assert signal.getsignal(signal.SIGINT) is before
    assert res.metrics["mesh"]["ranks"] == comm.size
    assert res.metrics["axons"]["seeded"] == 8 and len(res.axons) == 8
    for name, sp in res.metrics["species"].items():
        assert sp["mass_balance_rel_error"] < 1e-8, name
    assert list(res.timeseries["t_day"]) == pytest.approx([0, 0.5, 1])
    assert res.study.to_dict() == Study.default(TINY).to_dict()
    assert {p.name for p in res.figures} >= {"timecourses.png", "cutaway.png"}
    with pytest.raises(RunDirError, match="already exists"):  # on every rank
        run(Study.default(TINY), out, comm, quiet=True)
    again = run(Study.default(TINY), out, comm, quiet=True, overwrite=True, figures=False)
    assert again.done and not (out / "figures").exists()


def test_cli_run_is_the_api_run_with_figures(comm, tmp_path, monkeypatch):
    """``scaffoldfem run`` goes through api.run, which hands draw_run to the run."""
    import scaffoldfem.api.running as running
    from scaffoldfem.api.running import draw_run
    from scaffoldfem.cli import main

    calls = []

    def fake_run_study(study, out, comm, *, resume, overwrite, quiet, on_done):
        calls.append((study.scaffold.porosity, resume, overwrite, quiet, on_done))
        if comm.rank == 0:
            out.mkdir(parents=True)
            (out / "study.resolved.toml").write_text(study.to_toml())
        comm.barrier()
        return 0

    monkeypatch.setattr(running, "run_study", fake_run_study)
    out = Path(comm.bcast(str(tmp_path), root=0)) / "run"
    assert main(["run", str(BASELINE), "--out", str(out), "--set", "scaffold.porosity=0.8",
                 "--quiet"]) == 0
    assert calls == [(0.8, False, False, True, draw_run)]
