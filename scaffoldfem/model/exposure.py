"""Region means of the model's fields for the exposure metrics, by dot products.

``∫_R c = w_R · c`` with ``w_R,i = ∫_R φ_i`` assembled once: a step's means cost a
few dot products and one reduction instead of volume assemblies. Regions: the
lesion (scaffold ∪ channel ∪ cavity), grey matter, the near host (host tissue
whose cell midpoints lie within ``host_band`` of the lesion faces along the cord)
and the dorsal horn (grey matter dorsal of ``y ≥ dorsal_y`` within ``dorsal_band``
of the lesion faces: the laminae I–II-like cap of config/dorsal_horn.py, a region
derived from the grey-matter cells, not a Gmsh tag; its indicator is integrated
with a raised quadrature degree, so the region is not limited to whole cells and its
volume converges with the mesh). Receptor occupancy ``c/(c + K_d)`` is averaged with
the same weights from its nodal values (the lumped mean of the nonlinear function).
A region with no volume (no grey matter, or a mesh without it) yields no keys.
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

#: Quadrature degree of the dorsal-horn indicator (a discontinuous integrand: more
#: points per cell resolve the cut through a cell better than its midpoint would).
DORSAL_QUADRATURE = 6


class RegionMeans:
    """Weights and volumes of the lesion, grey matter, the near host and the dorsal horn.

    Args:
        disc: The shared discretisation.
        lesion_z: (z0, z1) of the lesion faces (mm).
        host_band: Width of the near host along z (mm).
        dorsal_y: Grey matter with y >= this (mm) is dorsal horn (None: no dorsal horn).
        dorsal_band: Dorsal horn counted within this distance of the lesion faces (mm).
    """

    def __init__(self, disc: Discretisation, lesion_z: tuple[float, float], host_band: float,
                 dorsal_y: float | None = None, dorsal_band: float = 2.0):
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
        self.dorsal_y, self.dorsal_band, self.lesion_z = dorsal_y, dorsal_band, lesion_z
        self.w_dorsal, self.dorsal_vol = self._dorsal_weights(lesion_z)

    def _dorsal_weights(self, lesion_z: tuple[float, float]) -> tuple[np.ndarray, float]:
        """``w_i = ∫_{grey} χ φ_i`` with χ the indicator of the dorsal cap near the lesion."""
        d = self.disc
        n = d.n_owned_dofs
        if self.dorsal_y is None or not d.has["grey_matter"]:
            return np.zeros(n), 0.0
        x = ufl.SpatialCoordinate(d.mesh)
        z0, z1 = lesion_z
        chi = (ufl.conditional(ufl.ge(x[1], self.dorsal_y), 1.0, 0.0)
               * ufl.conditional(ufl.le(ufl.max_value(z0 - x[2], x[2] - z1), self.dorsal_band),
                                 1.0, 0.0))
        dx = d.dx(cell_tag("grey_matter"), metadata={"quadrature_degree": DORSAL_QUADRATURE})
        w = d.owned_vector(chi * ufl.TestFunction(d.V) * dx)
        vol = d.comm.allreduce(float(w.sum()), op=MPI.SUM)
        return w, vol

    def dorsal_horn_summary(self) -> dict[str, float | None]:
        """Volume (mm³), centroid (mm) and the definition of the dorsal-horn region;
        ``band_within_cord`` is false when the band reaches a cut end of the modelled
        cord (then the metrics do depend on its length). Collective."""
        d, w = self.disc, self.w_dorsal
        xyz = d.V.tabulate_dof_coordinates()[: len(w)]
        sums = d.comm.allreduce(w @ xyz, op=MPI.SUM)
        z = d.mesh.geometry.x[:, 2]
        zmin = d.comm.allreduce(float(z.min(initial=np.inf)), op=MPI.MIN)
        zmax = d.comm.allreduce(float(z.max(initial=-np.inf)), op=MPI.MAX)
        vol, (z0, z1) = self.dorsal_vol, self.lesion_z
        centroid = [float(v / vol) for v in sums] if vol else None
        return {"volume_mm3": vol, "centroid_mm": centroid, "y_cut_mm": self.dorsal_y,
                "band_mm": self.dorsal_band,
                "band_within_cord": bool(z0 - self.dorsal_band > zmin
                                         and z1 + self.dorsal_band < zmax)}

    def _where(self) -> list[tuple[str, np.ndarray]]:
        out = [("lesion", self.w_lesion), ("host", self.w_band)]
        return out + ([("dorsal_horn", self.w_dorsal)] if self.dorsal_vol > 0 else [])

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
        ``occupancy_host`` (and ``dorsal_horn``, ``occupancy_dorsal_horn`` when that
        region has volume); per other field its ``lesion`` mean. One reduction."""
        n = len(self.w_lesion)
        keys, local = [], []
        for name, f in species.items():
            c = np.maximum(f.x.array[:n], 0.0)
            occ = c / (c + kd[name])
            for where, w in self._where():
                keys += [(name, where), (name, f"occupancy_{where}")]
                local += [float(w @ c), float(w @ occ)]
        for name, f in others.items():
            keys.append((name, "lesion"))
            local.append(self.disc.dot(self.w_lesion, f))
        sums = self.disc.comm.allreduce(np.asarray(local), op=MPI.SUM) if local else []
        out: dict[str, dict[str, float]] = {}
        for (name, what), v in zip(keys, sums, strict=True):
            vol = (self.band_vol if what.endswith("host") else
                   self.dorsal_vol if what.endswith("dorsal_horn") else self.lesion_vol)
            out.setdefault(name, {})[what] = self._mean(float(v), vol)
        return out
