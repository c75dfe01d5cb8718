"""Region means of the model's fields for the exposure metrics, by dot products.

``∫_R c = w_R · c`` with ``w_R,i = ∫_R φ_i`` assembled once: a step's means cost a
few dot products and one reduction instead of volume assemblies. Regions: the
lesion (scaffold ∪ channel ∪ cavity), grey matter, and the near host (host tissue
whose cell midpoints lie within ``host_band`` of the lesion faces along the cord).
Receptor occupancy ``c/(c + K_d)`` is averaged with the same weights from its
nodal values (the lumped mean of the nonlinear function).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.model.discretisation import LESION_REGIONS, Discretisation
from scaffoldfem.regions import cell_tag


class RegionMeans:
    """Weights and volumes of the lesion, grey matter and the near host.

    Args:
        disc: The shared discretisation.
        lesion_z: (z0, z1) of the lesion faces (mm).
        host_band: Width of the near host along z (mm).
    """

    def __init__(self, disc: Discretisation, lesion_z: tuple[float, float], host_band: float):
        d = self.disc = disc
        v = ufl.TestFunction(d.V)
        first, *rest = (d.dx(cell_tag(r)) for r in LESION_REGIONS)
        self.w_lesion = d.owned_vector(v * sum(rest, first))
        self.w_grey = d.owned_vector(v * d.dx(cell_tag("grey_matter")))
        self.lesion_vol = sum(d.volumes[r] for r in LESION_REGIONS)
        self.grey_vol = d.volumes["grey_matter"]
        z0, z1 = lesion_z
        zc = d.cell_midpoints()[:, 2]
        near = d.host & (np.maximum(z0 - zc, zc - z1) <= host_band)
        self.w_band = d.owned_vector(d.dg0("near_host", near.astype(float)) * v * d.dx)
        own = d.n_owned
        self.band_vol = d.comm.allreduce(float(near[:own] @ d.cell_volume[:own]), op=MPI.SUM)

    @staticmethod
    def _mean(total: float, vol: float) -> float:
        return total / vol if vol else 0.0

    def lesion_and_grey(self, fields: Mapping[str, fem.Function]
                        ) -> dict[str, tuple[float, float]]:
        """(lesion mean, grey-matter mean) per field, one reduction."""
        d, names = self.disc, list(fields)
        local = np.array([[d.dot(self.w_lesion, fields[n]), d.dot(self.w_grey, fields[n])]
                          for n in names]).reshape(-1, 2)
        sums = d.comm.allreduce(local, op=MPI.SUM)
        return {n: (self._mean(sums[i, 0], self.lesion_vol), self._mean(sums[i, 1], self.grey_vol))
                for i, n in enumerate(names)}

    def exposure(self, species: Mapping[str, fem.Function], kd: Mapping[str, float],
                 others: Mapping[str, fem.Function]) -> dict[str, dict[str, float]]:
        """Per species ``lesion``, ``host`` (ng/mL) and ``occupancy_lesion``,
        ``occupancy_host``; per other field its ``lesion`` mean. One reduction."""
        n = len(self.w_lesion)
        keys, local = [], []
        for name, f in species.items():
            c = np.maximum(f.x.array[:n], 0.0)
            occ = c / (c + kd[name])
            for where, w in (("lesion", self.w_lesion), ("host", self.w_band)):
                keys += [(name, where), (name, f"occupancy_{where}")]
                local += [float(w @ c), float(w @ occ)]
        for name, f in others.items():
            keys.append((name, "lesion"))
            local.append(self.disc.dot(self.w_lesion, f))
        sums = self.disc.comm.allreduce(np.asarray(local), op=MPI.SUM) if local else []
        out: dict[str, dict[str, float]] = {}
        for (name, what), v in zip(keys, sums, strict=True):
            vol = self.band_vol if what.endswith("host") else self.lesion_vol
            out.setdefault(name, {})[what] = self._mean(float(v), vol)
        return out
