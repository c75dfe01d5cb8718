"""``scaffoldfem mesh``: mesh the study geometry (cached) and report the regions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from scaffoldfem.config.study import Study


def mesh_command(study: Study, output: Path | None, comm: Any) -> str:
    """Mesh (or reuse the cached mesh), optionally copy it to ``output``, return the table.

    Args:
        study: Validated study.
        output: Extra path to write the ``.msh`` to (``-o``), or None.
        comm: MPI communicator; meshing happens on rank 0, the report is collective.

    Returns:
        The region table (cells and volume per region against the analytic values,
        element quality), for rank 0 to print.
    """
    from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh, mesh_report

    path = ensure_mesh(study.geometry, comm)
    if output is not None and comm.rank == 0:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, output)
    mesh, cell_tags, facet_tags = load_mesh(path, comm)
    report = mesh_report(study.geometry, path, mesh, cell_tags, facet_tags)
    where = f"mesh: {path}" + (f" (copied to {output})" if output is not None else "")
    return f"{where}\n{report}"
