"""``scaffoldfem run``: study → mesh → coupled solve → axons → run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaffoldfem.config.study import Study
from scaffoldfem.rundir import RunDirError, atomic_write_text, prepare_run_dir


def _prepare(out: Path, comm: Any, resume: bool, overwrite: bool) -> None:
    """Create the run directory on rank 0; every rank raises the same error."""
    err = None
    if comm.rank == 0:
        try:
            prepare_run_dir(out, resume=resume, overwrite=overwrite)
        except RunDirError as e:
            err = str(e)
    err = comm.bcast(err, root=0)
    if err is not None:
        raise RunDirError(err)


def run_study(study: Study, out: Path, comm: Any, *, resume: bool = False,
              overwrite: bool = False, quiet: bool = False) -> int:
    """Run ``study`` into ``out``; return the process exit code."""
    from scaffoldfem.mesh import ensure_mesh, load_mesh

    out = Path(out)
    _prepare(out, comm, resume, overwrite)
    if comm.rank == 0:
        atomic_write_text(out / "study.resolved.toml", study.to_toml())
    mesh_path = ensure_mesh(study.geometry, comm)
    mesh, cell_tags, facet_tags = load_mesh(mesh_path, comm)
    del mesh, cell_tags, facet_tags
    comm.barrier()
    return 0
