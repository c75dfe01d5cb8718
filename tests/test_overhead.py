"""Per-step and per-output work outside the solvers (issue 14, "Per-step overhead
removed"): no form is compiled while stepping and writing outputs, the vectorised
region table gives exactly what the per-region masks gave, DG0 cell values are
copies, and the incremental CSV writer gives the bytes of the whole table."""

from __future__ import annotations

import collections
import io
from pathlib import Path

import dolfinx
import dolfinx.fem.forms
import dolfinx.jit
import numpy as np
import pandas as pd
import pytest
from mpi4py import MPI
from test_run import BASELINE, TINY

from scaffoldfem.config.study import load_study
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel
from scaffoldfem.regions import CELL_TAGS
from scaffoldfem.run.tables import CsvCache, csv_bytes, scalar_fields
from scaffoldfem.run.writer import RunWriter


class _Counter:
    """Counts calls of ``dolfinx.fem.form`` and of the FFCx JIT while armed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: collections.Counter[str] = collections.Counter()
        self.armed = False
        form, jit = dolfinx.fem.forms.form, dolfinx.jit.ffcx_jit

        def counted_form(*a, **k):
            self.calls["form"] += self.armed
            return form(*a, **k)

        def counted_jit(*a, **k):
            self.calls["jit"] += self.armed
            return jit(*a, **k)

        # Modules call fem.form / compat.compile_form (-> fem.form) and the JIT
        # through these attributes at call time.
        monkeypatch.setattr(dolfinx.fem, "form", counted_form)
        monkeypatch.setattr(dolfinx.fem.forms, "form", counted_form)
        monkeypatch.setattr(dolfinx.jit, "ffcx_jit", counted_jit)
        for mod in (dolfinx.fem.forms, dolfinx.fem.function):
            if hasattr(mod, "ffcx_jit"):
                monkeypatch.setattr(mod, "ffcx_jit", counted_jit)
        if hasattr(dolfinx.fem.forms, "jit"):
            monkeypatch.setattr(dolfinx.fem.forms.jit, "ffcx_jit", counted_jit)


@pytest.fixture(scope="module")
def stepped(tmp_path_factory):
    """The tiny baseline: one warm-up step with outputs and a checkpoint, then two more
    with every form and JIT call counted. Yields (model, writer, counts)."""
    mp = pytest.MonkeyPatch()
    counter = _Counter(mp)
    comm = MPI.COMM_WORLD
    out = comm.bcast(str(tmp_path_factory.mktemp("overhead")) if comm.rank == 0 else None)
    study = load_study(BASELINE, TINY)
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    writer = RunWriter(Path(out), study, Path(out) / "mesh", comm, quiet=True)
    try:
        with CoupledModel(study, mesh, cells, facets) as model:
            writer.attach(model, None, {})
            model.ensure_mechanics()
            writer.output()
            for step in range(3):
                counter.armed = step > 0  # the first step may build what it needs
                model.step(0.25)
                writer.after_step(0.25, {})
                writer.output()
                writer.checkpoint(0.25)
            counter.armed = False
            yield model, writer, counter.calls
    finally:
        writer.close()
        mp.undo()


def test_the_counter_sees_a_form_compiled(monkeypatch):
    """The counting patch catches a form compiled through the model's helper (so the
    zero below means something)."""
    import ufl
    from dolfinx import mesh as dmesh

    from scaffoldfem.fem.compat import compile_form

    counter = _Counter(monkeypatch)
    m = dmesh.create_unit_cube(MPI.COMM_WORLD, 2, 2, 2)
    counter.armed = True
    compile_form(1.0 * ufl.dx(domain=m))
    assert counter.calls["form"] == 1 and counter.calls["jit"] >= 1


def test_stepping_and_outputs_compile_no_form(stepped):
    """Steps, table and field outputs and checkpoints compile no form once the run is
    going (the scaffold means, the balance weights were compiled at every call)."""
    _, _, calls = stepped
    assert calls["form"] == 0


def test_stepping_and_outputs_jit_nothing(stepped):
    """No FFCx JIT call at all while stepping (forms nor expressions)."""
    _, _, calls = stepped
    assert calls["jit"] == 0


def _region_rows_per_mask(model) -> list[dict]:
    """regions.csv rows as the per-region boolean masks computed them (4 reductions
    per field and region): the reference the vectorised rows must equal bit for bit."""
    d, comm, t = model.disc, model.disc.comm, model.t
    vol, reg = d.cell_volume[: d.n_owned], d.region[: d.n_owned]
    rows = []
    for fname, f in scalar_fields(model).items():
        if f.function_space == d.Q:
            vals = d.cells_of(f)[: d.n_owned]
        else:
            g = dolfinx.fem.Function(d.Q)
            g.interpolate(f)
            vals = d.cells_of(g)[: d.n_owned]
        for rname, tag in CELL_TAGS.items():
            if not d.has[rname]:
                continue
            sel = reg == tag
            s = comm.allreduce(float(np.sum(vals[sel] * vol[sel])), op=MPI.SUM)
            v = comm.allreduce(float(np.sum(vol[sel])), op=MPI.SUM)
            lo = comm.allreduce(float(vals[sel].min(initial=np.inf)), op=MPI.MIN)
            hi = comm.allreduce(float(vals[sel].max(initial=-np.inf)), op=MPI.MAX)
            rows.append({"t_day": t, "region": rname, "field": fname,
                         "mean": s / v if v else float("nan"), "min": lo, "max": hi})
    return rows


def test_region_rows_equal_the_per_region_masks(stepped):
    model, writer, _ = stepped
    new, ref = writer.tables._region_rows(), _region_rows_per_mask(model)
    assert len(new) == len(ref) > 0
    for a, b in zip(new, ref, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), (k, a, b)


def test_dg0_copies_are_copies(stepped):
    """``set_cells`` sets cell values through the DG0 dofmap and ``cells_of`` reads them
    back as a new array (writing to it leaves the function alone)."""
    model, _, _ = stepped
    d = model.disc
    own = np.arange(d.n_owned, dtype=float)
    f = d.dg0("probe", np.arange(d.n_cells, dtype=float))
    assert np.array_equal(f.x.array[d.qdof[: d.n_owned]], own)
    vals = d.cells_of(f)
    assert np.array_equal(vals[: d.n_owned], own)
    vals[:] = -1.0
    assert np.array_equal(d.cells_of(f)[: d.n_owned], own)


def test_csv_cache_gives_the_bytes_of_the_whole_table():
    """Rows appended in chunks, a column that appears later (in the middle of a row,
    as the balance's ``storage`` does), NaN, strings, and rows changed in place."""
    rng = np.random.default_rng(3)
    rows: list[dict] = []
    cache = CsvCache()
    for i in range(12):
        row = {"t_day": 0.5 * i, "a": float(rng.normal()) * 10.0 ** rng.integers(-12, 12)}
        if i >= 1:
            row["storage"] = float(rng.normal())
        row["name"] = f"r{i % 3}"
        row["b"] = float("nan") if i % 4 == 0 else float(rng.normal())
        rows.append(row)
        got = cache(rows, pd.DataFrame)
        assert got == csv_bytes(pd.DataFrame(rows)), i
    for r in rows:  # changed in place: the caller says so
        r["extra"] = 1.0
    cache.reset()
    assert cache(rows, pd.DataFrame) == csv_bytes(pd.DataFrame(rows))
    frames = [pd.DataFrame({"t_day": np.full(3, float(i)), "z": np.linspace(0, 1, 3)})
              for i in range(5)]
    cache = CsvCache()
    for k in range(1, 6):
        assert cache(frames[:k], pd.concat) == csv_bytes(pd.concat(frames[:k]))
    assert pd.read_csv(io.BytesIO(cache(frames, pd.concat))).shape == (15, 2)
