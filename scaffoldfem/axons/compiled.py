"""The tracer's call of the compiled growth-cone steps (:mod:`scaffoldfem.axons.kernel`).

:class:`CompiledSteps` is the part of :class:`~scaffoldfem.axons.tracer.Tracer` that
hands the cone table, the mesh arrays of its :class:`~scaffoldfem.fem.locate.Locator`
and the stacked cue fields to :func:`~scaffoldfem.axons.kernel.advance_cones`, and
appends the trajectory records it wrote.
"""

from __future__ import annotations

import numpy as np

from scaffoldfem.axons import kernel as kr
from scaffoldfem.axons.motion import MAX_SLIDES

#: Most trajectory rows one kernel call writes (cones left over wait for the next call).
MAX_RECORDS = 200_000


class CompiledSteps:
    """Grow settled cones with the compiled steps (mixin of the tracer)."""

    def _compiled_steps(self, i: np.ndarray, t1: float) -> np.ndarray:
        """Cones ``i`` grown by :func:`~scaffoldfem.axons.kernel.advance_cones`; returns
        those handed back in transit."""
        p, c, loc, F = self.p, self.c, self.loc, self.fields
        for k, v in c.items():  # the kernel writes in place: C-contiguous columns
            if not v.flags.c_contiguous:
                c[k] = np.ascontiguousarray(v)
        n = len(c["id"])
        at = F.columns
        mode = 0 if F.axis is None else (1 if F.axis[0] == "cell" else 2)
        has_adapt = "adapt" in c
        vals = {"chemotaxis": p.cues.chemotaxis, "durotaxis": p.cues.durotaxis,
                "scar_repulsion": p.cues.scar_repulsion, "z_max": self.z_max,
                "z_min": self.z_min, "delta": self._delta, "lesion_z0": self.lesion_z[0],
                "lesion_z1": self.lesion_z[1], "eps": loc.eps}
        prm = np.array([float(vals[k] if k in vals else getattr(p, k)) for k in kr.PARAMS])
        flags = np.array([at.get("s", -1), at.get("q", -1), at.get("axis", -1), mode,
                          len(self.species), int(has_adapt), int(p.stop_at_cross),
                          p.record_every, MAX_SLIDES], dtype=np.int64)
        steps = p.max_speed * (t1 - float(c["t"][i].min())) / p.arc_step
        cap = int(min(len(i) * (steps / p.record_every + 3), MAX_RECORDS))
        rec = np.empty((cap, 9 + len(self.species)))
        deferred = np.empty(len(i), dtype=np.int64)
        axis = F.axis[1] if mode == 1 else np.zeros((1, 3))
        adapt = c["adapt"].reshape(n, -1) if has_adapt else np.zeros((1, 1))
        nrec, ndef = kr.advance_cones(
            i.astype(np.int64), float(t1), prm, flags, int(p.seed), loc.max_iter,
            loc.affine, loc.nodes, loc.neighbours, self.blocked, self.implant,
            self.region, loc.global_cell, F.kappa_cell, axis, F.nodal, self.kd,
            c["cell"], c["gcell"], c["x"], c["d"], c["t"], c["k"], c["id"], c["state"],
            c["crossed"], c["t_cross"], c["anchor"], c["anchor_t"], c["length"], c["absdz"],
            c["sense"], c["graft"], adapt, c["target"], c["xold"], c["speed"], c["exiting"],
            c["slides"], c["back"], c["transit"], rec, deferred)
        if nrec:
            self.records.append(rec[:nrec].copy())
        return deferred[:ndef]
