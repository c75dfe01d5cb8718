"""Mechanics summaries that converge under mesh refinement, and their peaks over a run.

The scaffold interface meets the pia in a two-material corner: the strain and the
stress are singular there, so the *largest* cell value grows as the mesh is refined
(the ``max_*`` metrics, kept but mesh-dependent). What converges are integral
summaries in which the corner's few cells carry vanishing weight:

* the normal-strain jump ``|[n·ε n]|`` across the ``scaffold_interface`` facets (for a
  conforming displacement the tangential strains are continuous, so this is also the
  jump of ε_vol): its area-weighted mean, and the area-weighted 95th percentile of the
  jump averaged over the interface within ``mechanics.interface_averaging_length``
  of each facet (owned facets, each once). Unaveraged, the top 5 % of the interface
  area lies in rings narrower than a cell along the singular rims, and that
  percentile keeps growing with refinement;
* von Mises stress per cell region: its volume-weighted mean and 95th percentile.

Percentiles are the inverted weighted CDF computed across ranks
(:func:`scaffoldfem.fem.percentile.weighted_percentile`). Each summary is taken per
solve; a run reports the largest over its solves (:class:`Peaks`), as for the maxima.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.percentile import weighted_mean, weighted_percentile
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.regions import CELL_TAGS, cell_tag

#: The upper percentile reported (the "p95" keys).
PERCENTILE = 95.0


def summary(
    disc: Discretisation,
    von_mises: np.ndarray,
    jump: np.ndarray,
    jump_averaged: np.ndarray,
    area: np.ndarray,
) -> dict[str, float]:
    """One solve's summaries as flat keys (collective; the same on every rank).

    Args:
        disc: The discretisation (regions, cell volumes, owned cells).
        von_mises: Von Mises stress per local cell (kPa).
        jump: ``|[n·ε n]|`` per owned interface facet.
        jump_averaged: The same averaged over the interface within the averaging length.
        area: The facets' areas (mm²).

    Returns:
        ``strain_jump.mean``, ``strain_jump.p95``, and per region present
        ``von_mises.<region>.mean`` / ``.p95`` (kPa).
    """
    comm, own = disc.comm, slice(0, disc.n_owned)
    out = {
        "strain_jump.mean": weighted_mean(jump, area, comm),
        "strain_jump.p95": weighted_percentile(jump_averaged, area, PERCENTILE, comm),
    }
    vm, vol, region = von_mises[own], disc.cell_volume[own], disc.region[own]
    for name in CELL_TAGS:
        if not disc.has[name]:
            continue
        sel = region == cell_tag(name)
        out[f"von_mises.{name}.mean"] = weighted_mean(vm[sel], vol[sel], comm)
        out[f"von_mises.{name}.p95"] = weighted_percentile(vm[sel], vol[sel], PERCENTILE, comm)
    return out


class Peaks:
    """The largest value over the solves of each summary (JSON-ready, None = never)."""

    def __init__(self) -> None:
        self.values: dict[str, float | None] = {}

    def update(self, new: dict[str, float]) -> None:
        """Fold one solve's :func:`summary` in (NaN, e.g. no interface, is skipped)."""
        for key, v in new.items():
            old = self.values.get(key)
            if math.isfinite(v):
                self.values[key] = v if old is None else max(old, v)
            else:
                self.values.setdefault(key, old)

    def state(self) -> dict[str, float | None]:
        return dict(self.values)

    def restore(self, values: dict[str, float | None] | None) -> None:
        self.values = dict(values or {})

    def metrics(self) -> dict[str, Any]:
        """Nested for metrics.json: ``interface_strain_jump: {mean, p95}``,
        ``von_mises_kPa: {<region>: {mean, p95}}``."""
        out: dict[str, Any] = {"interface_strain_jump": {}, "von_mises_kPa": {}}
        for key, v in sorted(self.values.items()):
            parts = key.split(".")
            if parts[0] == "strain_jump":
                out["interface_strain_jump"][parts[1]] = v
            else:
                out["von_mises_kPa"].setdefault(parts[1], {})[parts[2]] = v
        return out
