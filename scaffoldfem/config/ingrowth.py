"""Study section ``[ingrowth]``: host tissue growing into the scaffold's pores, and the
cavitation risk when the polymer goes before tissue has filled its place.

The filled fraction ``f`` of the pore space (0..1) advances as a Fisher–KPP front
from host tissue and channel lumens (docs/model.md, "Tissue ingrowth and
cavitation"): ``∂f/∂t = ∇·(g D_f ∇f) + g r f (1 − f)`` with ``D_f = v ℓ / 2``,
``r = v / (2 ℓ)``, so the front moves at ``g v`` and is ``ℓ`` wide whatever ``g``.
``g`` is the scaffold's permissiveness (pore size × porosity × stiffness match).
The pore size itself is a scaffold key (``scaffold.pore_size``). Internal units:
mm, day, kPa.
"""

from __future__ import annotations

from pydantic import Field

from scaffoldfem.config.base import Section
from scaffoldfem.units import Q


class IngrowthConfig(Section):
    """Tissue ingrowth into the scaffold pores and the cavitation metric."""

    # Off by default: the baseline keeps a degraded scaffold cell as fluid (its
    # published answer); switch on to model ingrowth and cavitation risk.
    enabled: bool = False
    # Front speed in a fully permissive scaffold (g = 1). Assumed: ~0.1 mm/day, so the
    # default PLGA scaffold (g ~ 0.2-0.5) fills ~0.5-1 mm in 4 weeks, as channel
    # scaffolds in the transected rat cord hold host-derived tissue at the 1-month end
    # point (Krych et al. 2009 Acta Biomater 5:2551; Koffler et al. 2019 Nat Med 25:263).
    front_speed: Q("mm/day", gt=0) = "0.1 mm/day"
    # Width sqrt(D_f/(g r)) of the infiltration front: a physical length (a graded
    # cell-density front over a few pore diameters; assumed 0.3 mm). It must span
    # >= 2 cells of the mesh in the scaffold for the front speed to be mesh-converged
    # (coarse: 0.15 mm there).
    front_width: Q("mm", gt=0) = "0.3 mm"
    # Pore size of best ingrowth, d_opt in g_pore = 2x/(1 + x^2), x = d/d_opt: cell
    # number in collagen-GAG scaffolds was highest at 325 um (85-325 um tested; Murphy,
    # Haugh & O'Brien 2010 Biomaterials 31:461), ingrowth and vascularisation need
    # >= ~100 um and > 300 um is recommended (Karageorgiou & Kaplan 2005 Biomaterials
    # 26:5474); above it attachment falls with the specific surface area ~ 1/d
    # (O'Brien et al. 2005 Biomaterials 26:433, 96-150 um). 300 um.
    optimal_pore_size: Q("mm", gt=0) = "300 um"
    # Porosity factor g_phi = phi^m (interconnected pore volume open to cells; higher
    # porosity gives more ingrowth in vivo, Karageorgiou & Kaplan 2005). m = 2 assumed.
    porosity_exponent: float = Field(2.0, ge=0.0)
    # Stiffness match g_E = 1/(1 + (log10(E/E_host)/s)^2) with E the polymer
    # skeleton's Gibson-Ashby modulus: ingrowth in degrading scaffolds is
    # mechanoregulated (Byrne et al. 2007 Biomaterials 28:5544); the host-scaffold
    # mismatch is what the SCI literature links to cavitation. E_host = 0.1 kPa (CNS at
    # AFM scale, Koser et al. 2015 Biophys J 108:2137); s = 2 decades assumed.
    host_modulus: Q("kPa", gt=0) = "0.1 kPa"
    stiffness_tolerance: float = Field(2.0, gt=0.0)
    # A scaffold cell whose polymer mass fraction w fell below `polymer_gone` while its
    # pores are less than `filled_threshold` filled with tissue counts as cavitated
    # (fluid where the matrix was; assumed thresholds).
    polymer_gone: float = Field(0.1, gt=0.0, lt=1.0)
    filled_threshold: float = Field(0.5, gt=0.0, lt=1.0)

    def fisher(self) -> tuple[float, float]:
        """``(D_f, r)`` at g = 1 from the front speed and width: ``v = 2 sqrt(D r)``,
        ``ℓ = sqrt(D/r)`` give ``D = v ℓ/2`` (mm²/day), ``r = v/(2ℓ)`` (1/day)."""
        v, ell = self.front_speed, self.front_width
        return 0.5 * v * ell, 0.5 * v / ell
