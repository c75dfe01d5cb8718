"""Sobol' sensitivity indices (sweep/sensitivity.py) and the Saltelli design (sweep/sampling.py).

The Ishigami function goes through the same path as a sweep: the ``[sample]`` of a
sweep file draws Saltelli's design in the unit cube, :meth:`Range.values` maps it to
parameter values, and :func:`sobol_indices` (SALib's estimators) returns the
indices, which must match the analytic ones within their bootstrap intervals.
A sweep run with the fake runner of test_sweep.py checks that ``sensitivity.csv``
is written at the end and that its rows belong to the right cases: a parameter a
metric does not depend on gets S1 = ST = 0 exactly.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from SALib.test_functions import Ishigami
from test_sweep import fake_runner

from scaffoldfem.sweep.plan import load_sweep
from scaffoldfem.sweep.runner import run_sweep
from scaffoldfem.sweep.sampling import Sample
from scaffoldfem.sweep.sensitivity import COLUMNS, SENSITIVITY_CSV, sobol_indices, sweep_sensitivity

BASELINE = ROOT / "studies" / "baseline.toml"
A, B = 7.0, 0.1


def ishigami_analytic(a: float = A, b: float = B) -> tuple[np.ndarray, np.ndarray]:
    """First- and total-order indices of sin x1 + a sin² x2 + b x3⁴ sin x1 on [-π, π]³
    (Ishigami & Homma 1990; Saltelli et al. 2008, the Primer, §4.9)."""
    pi = math.pi
    v1 = 0.5 * (1 + b * pi**4 / 5) ** 2
    v2 = a * a / 8
    v13 = 8 * b * b * pi**8 / 225
    v = v1 + v2 + v13
    return np.array([v1 / v, v2 / v, 0.0]), np.array([(v1 + v13) / v, v2 / v, v13 / v])


def ishigami_sample(base_n: int, seed: int = 3) -> Sample:
    """The ``[sample]`` a sweep file would hold for the three Ishigami inputs."""
    return Sample.model_validate({"method": "saltelli", "n": base_n * 5, "seed": seed,
                                  "ranges": {f"x{i}": [-math.pi, math.pi] for i in (1, 2, 3)}})


def ishigami_outputs(sample: Sample) -> pd.DataFrame:
    u = sample.points()
    x = np.column_stack([r.values(u[:, j]) for j, r in enumerate(sample.ranges.values())])
    return pd.DataFrame({"ishigami": Ishigami.evaluate(x, A=A, B=B)})


def test_ishigami_indices_within_their_bootstrap_intervals():
    sample = ishigami_sample(1024)
    sens = sobol_indices(sample, ishigami_outputs(sample), seed=0)
    t = sens.table.set_index("parameter")
    assert list(sens.table.columns) == list(COLUMNS) and list(t.index) == ["x1", "x2", "x3"]
    s1, st = ishigami_analytic()
    assert s1 == pytest.approx([0.3139, 0.4424, 0.0], abs=1e-4)  # the published values
    for j, name in enumerate(t.index):
        for key, true in (("S1", s1[j]), ("ST", st[j])):
            est, conf = t.loc[name, key], t.loc[name, f"{key}_conf"]
            assert abs(est - true) <= conf, (name, key, est, conf, true)
            assert 0 < conf < 0.1, (name, key, conf)  # an interval that says something
    assert sens.base_n == 1024 and sens.cases == 5120 and not sens.notes


def test_ishigami_outputs_out_of_design_order_miss_the_analytic_indices():
    """The check above can fail: the same outputs shuffled lose the design's order."""
    sample = ishigami_sample(1024)
    y = ishigami_outputs(sample)
    y["ishigami"] = np.random.default_rng(0).permutation(y["ishigami"].to_numpy())
    t = sobol_indices(sample, y, seed=0).table.set_index("parameter")
    s1, st = ishigami_analytic()
    misses = [abs(t.iloc[j][k] - true) > t.iloc[j][f"{k}_conf"]
              for j in range(3) for k, true in (("S1", s1[j]), ("ST", st[j]))]
    assert sum(misses) >= 2


def test_metrics_without_variance_or_with_gaps_are_noted_not_analysed():
    sample = ishigami_sample(8)
    y = ishigami_outputs(sample).assign(flat=1.5, gap=lambda d: d["ishigami"])
    y.loc[3, "gap"] = np.nan
    sens = sobol_indices(sample, y)
    assert set(sens.table["metric"]) == {"ishigami"}
    assert any(n.startswith("flat: the same in every case") for n in sens.notes)
    assert any(n.startswith("gap: no value in 1 of 40") for n in sens.notes)
    with pytest.raises(ValueError, match="40 points but 39"):
        sobol_indices(sample, y.iloc[:-1])
    lhs = Sample.model_validate({"n": 40, "ranges": {"x": [0, 1]}})
    with pytest.raises(ValueError, match="Saltelli design"):
        sobol_indices(lhs, y)


def test_saltelli_design_size_and_reproducibility():
    ranges = {"a": [0.0, 1.0], "b": {"low": "1 kPa", "high": "1 MPa", "log": True}}
    s = Sample.model_validate({"method": "saltelli", "n": 32, "seed": 4, "ranges": ranges})
    pts = s.points()
    assert pts.shape == (32, 2) and s.base_n == 8
    assert np.array_equal(pts, s.points()) and ((pts >= 0) & (pts <= 1)).all()
    # Saltelli's blocks of d + 2 rows: A, AB_a (a from B), AB_b (b from B), B.
    blocks = pts.reshape(8, 4, 2)
    a_rows, ab_a, ab_b, b_rows = (blocks[:, i] for i in range(4))
    assert np.array_equal(ab_a[:, 0], b_rows[:, 0]) and np.array_equal(ab_a[:, 1], a_rows[:, 1])
    assert np.array_equal(ab_b[:, 1], b_rows[:, 1]) and np.array_equal(ab_b[:, 0], a_rows[:, 0])
    for bad in (30, 4, 24):  # not 4*N; N = 1; N = 6 not a power of 2
        with pytest.raises(ValueError, match=r"saltelli with 2 ranges needs n = N\*\(d\+2\)"):
            Sample.model_validate({"method": "saltelli", "n": bad, "ranges": ranges})


# ---------------------------------------------------------------------------
# A Saltelli sweep end to end (fake runner: metrics are closed forms of the inputs)

SWEEP = f"""
name = "salt"
base = "{BASELINE}"
[set]
"output.figures" = false
[[cases]]                    # comes first: the design is the last 20 cases
id = "extra"
"scaffold.porosity" = 0.5
[sample]
method = "saltelli"
n = 20
seed = 2
[sample.ranges]
"scaffold.porosity" = [0.6, 0.95]
"scaffold.solid_modulus" = {{ low = "1 kPa", high = "100 kPa", log = true }}
"scaffold.hydrolysis_rate" = {{ low = "0.01 1/day", high = "0.1 1/day" }}
"""


@pytest.fixture
def shared(comm, tmp_path):
    return Path(comm.bcast(str(tmp_path), root=0))


def _sweep_file(shared: Path, comm) -> Path:
    path = shared / "salt.toml"
    if comm.rank == 0:
        path.write_text(SWEEP)
    comm.barrier()
    return path


@pytest.fixture(scope="module")
def salt(tmp_path_factory) -> SimpleNamespace:
    """The Saltelli sweep run once with its 7th case failing (a copy of that directory
    kept as ``failed``), then rerun (the one failed case retried) into the finished
    ``out``: 22 cases for the two tests below instead of 42."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    shared = Path(comm.bcast(str(tmp_path_factory.mktemp("salt")), root=0))
    plan = load_sweep(_sweep_file(shared, comm))
    out, failed = shared / "out", shared / "failed"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FAKE_FAIL_IDS", plan.cases[6].id)
        first = run_sweep(plan, out, comm, runner=fake_runner, quiet=True)
    if comm.rank == 0:
        shutil.copytree(out, failed)
    comm.barrier()
    rerun = run_sweep(plan, out, comm, runner=fake_runner, quiet=True)
    return SimpleNamespace(plan=plan, failed=failed, first=first, out=out, rerun=rerun)


def test_saltelli_sweep_writes_sensitivity_csv(comm, salt):
    """fake_runner: crossing = f(porosity, modulus), strain = g(porosity, modulus),
    mass remaining = exp(-hydrolysis · duration): each index of a parameter a metric
    ignores is exactly 0, which holds only if every row is the design's own case
    (here after a rerun that retried one case and rewrote its row)."""
    plan = salt.plan
    assert len(plan.cases) == 21 and plan.cases[0].id.endswith("extra")
    summary = salt.rerun
    assert summary.exit_code == 0 and (summary.ran, summary.skipped) == (1, 20)
    if comm.rank == 0:
        table = pd.read_csv(salt.out / SENSITIVITY_CSV)
        assert list(table.columns) == list(COLUMNS)
        t = table.set_index(["metric", "parameter"])
        zero = [("axons.crossing_fraction", "scaffold.hydrolysis_rate"),
                ("mechanics.interface_strain_jump.p95", "scaffold.hydrolysis_rate"),
                ("scaffold.mass_remaining_fraction", "scaffold.porosity"),
                ("scaffold.mass_remaining_fraction", "scaffold.solid_modulus")]
        for key in zero:
            assert t.loc[key, ["S1", "ST", "S1_conf", "ST_conf"]].abs().max() == 0.0, key
        used = [("axons.crossing_fraction", "scaffold.porosity"),
                ("scaffold.mass_remaining_fraction", "scaffold.hydrolysis_rate")]
        for key in used:
            assert t.loc[key, "ST"] > 0.1, key
        # Loading-free growth factors of the baseline: no variance, left out.
        assert "species.BDNF.lesion_auc_ng_day_per_mL" in set(table["metric"])
        assert "species.GDNF.lesion_auc_ng_day_per_mL" not in set(table["metric"])


def test_a_failed_case_leaves_the_indices_out(comm, salt):
    assert salt.first.exit_code == 3
    if comm.rank == 0:
        out = salt.failed  # the directory as the failing sweep left it
        assert not (out / SENSITIVITY_CSV).exists()
        sens = sweep_sensitivity(out)
        assert sens is not None and sens.table.empty
        assert any("axons.crossing_fraction: no value in 1 of 20" in n for n in sens.notes)
        # A table missing a case of the design (here the last): nothing to analyse yet.
        partial = pd.read_csv(out / "results.csv").iloc[:-1]
        assert sweep_sensitivity(out, partial) is None


def test_other_designs_get_no_indices(comm, shared):
    path = shared / "grid.toml"
    if comm.rank == 0:
        path.write_text(f'base = "{BASELINE}"\n[set]\n"output.figures" = false\n'
                        '[grid]\n"scaffold.porosity" = [0.7, 0.8]\n')
    comm.barrier()
    run_sweep(load_sweep(path), shared / "g", comm, runner=fake_runner, quiet=True)
    if comm.rank == 0:
        assert not (shared / "g" / SENSITIVITY_CSV).exists()
        assert sweep_sensitivity(shared / "g") is None
