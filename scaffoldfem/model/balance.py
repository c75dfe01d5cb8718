"""The mass-balance ledger: every balance term of every species, per step and cumulative.

Each term is accumulated from the same :class:`~scaffoldfem.model.transport.TransportParams`
the solver's forms are built from, so ``Δcontent = released + secreted + dosed +
unbound − decayed − uptake − bound − efflux`` holds to solver tolerance (``bound``
and ``unbound``, reported as ``bound_to_carriers``/``unbound_from_carriers``: the
exchange with affinity carriers)
(:func:`scaffoldfem.physics.transport.balance_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import ufl
from dolfinx import fem
from mpi4py import MPI

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.compat import compile_form
from scaffoldfem.model.discretisation import Discretisation
from scaffoldfem.model.material import Material
from scaffoldfem.model.species import SpeciesField
from scaffoldfem.model.state import ModelState
from scaffoldfem.physics.transport import balance_error, dirichlet_efflux, to_ng
from scaffoldfem.regions import facet_tag

#: Balance terms reported per species (timeseries.csv columns ``<term>_<name>_ng``);
#: ``storage`` (the scheme's Δ∫αc) follows them once a step has been taken.
BALANCE_TERMS = ("released", "secreted", "dosed", "unbound_from_carriers", "decayed", "uptake",
                 "bound_to_carriers", "efflux")


@dataclass
class _Account:
    """The balance of one species."""

    sp: SpeciesField
    forms: dict[str, dict[str, fem.Form]]  # scheme -> term -> compiled 0-form
    residuals: dict[str, fem.Form]  # scheme -> compiled residual (Dirichlet efflux)
    robin_weights: list[tuple[str, np.ndarray, float]]  # (facet, ∫h φ_i, c_ext)
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BALANCE_TERMS, 0.0))


class BalanceLedger:
    """Cumulative balance (ng) of every species.

    Args:
        disc: The shared discretisation.
        material: Supplies α and α_prev (the storage weights).
        species: The species whose steps are accounted.
    """

    def __init__(self, disc: Discretisation, material: Material, species: list[SpeciesField]):
        self.disc, self.material = disc, material
        v = ufl.TestFunction(disc.V)
        self.accounts: dict[str, _Account] = {}
        for sp in species:
            forms, residuals = {}, {}
            for scheme, p in sp.params.items():
                terms = p.balance(sp.c)
                del terms["content"]  # reported from the weights vector
                if scheme == "be":  # everything but uptake by dot products (_fast)
                    terms = {k: f for k, f in terms.items() if k in ("taken_up", "sink")}
                forms[scheme] = {k: compile_form(f) for k, f in terms.items()}
                if sp.dirichlet_dofs is not None:
                    residuals[scheme] = compile_form(p.residual(sp.c))
            weights = []
            for r in sp.params["be"].robin:
                wr = disc.owned_vector(r.h * v * disc.ds(facet_tag(r.name)))
                weights.append((r.name, wr, float(r.c_ext.value)))
            self.accounts[sp.name] = _Account(sp, forms, residuals, weights)
        # ∫α φ_i and ∫α_prev φ_i: the Functions keep their identity, only their values
        # change, so the forms are compiled once here.
        self._alpha_forms = (compile_form(material.alpha * v * disc.dx),
                             compile_form(material.alpha_prev * v * disc.dx))
        self.refresh_weights()

    # ------------------------------------------------------------------ storage weights
    def refresh_weights(self) -> None:
        """Vectors ``∫α φ_i`` for the current and previous α."""
        d = self.disc
        self.w_alpha = d.owned_vector(self._alpha_forms[0])
        self.w_alpha_prev = d.owned_vector(self._alpha_forms[1])

    def shift_weights(self, refreshed: bool) -> None:
        """A new time level: the current weights become the old; new ones if α changed
        (assembled from the form compiled at set-up: no JIT in the step)."""
        self.w_alpha_prev = self.w_alpha
        if refreshed:
            self.w_alpha = self.disc.owned_vector(self._alpha_forms[0])

    def content(self, name: str) -> float:
        """Free content ∫αc dV in ng (``∫αc = Σ_i c_i ∫α φ_i``, the weights vector)."""
        c = self.accounts[name].sp.c
        return to_ng(self.disc.comm.allreduce(self.disc.dot(self.w_alpha, c), op=MPI.SUM))

    # ------------------------------------------------------------------ accounting
    def account(self, scheme: str, dt: float) -> None:
        """Add the step just solved (``scheme``, length ``dt``) to every species' totals."""
        for acc in self.accounts.values():
            amounts = self._fast(acc, dt) if scheme == "be" else self._assembled(acc, scheme)
            dirichlet, dofs = 0.0, acc.sp.dirichlet_dofs
            if dofs is not None:
                dirichlet = to_ng(dirichlet_efflux(acc.residuals[scheme], dofs, dt))
            add = acc.totals
            add["storage"] = add.get("storage", 0.0) + amounts["storage"]
            add["released"] += amounts.get("source:released", 0.0)
            add["secreted"] += amounts.get("source:secreted", 0.0)
            add["dosed"] += amounts.get("source:dosed", 0.0)
            add["unbound_from_carriers"] += amounts.get("source:unbound", 0.0)
            add["bound_to_carriers"] += amounts.get("sink", 0.0)
            add["decayed"] += amounts.get("decayed", 0.0)
            add["uptake"] += amounts.get("taken_up", 0.0)
            efflux = sum(v for k, v in amounts.items() if k.startswith("efflux:"))
            add["efflux"] += efflux + dirichlet

    def _fast(self, acc: _Account, dt: float) -> dict[str, float]:
        """Backward Euler: every term except uptake is a dot product with a vector
        assembled only when α changes (``Σ_i ∫ f φ_i = ∫ f`` since the P1 basis sums
        to one), so bookkeeping costs no volume assembly per step."""
        d, sp, p = self.disc, acc.sp, acc.sp.params["be"]
        n_own = d.n_owned
        vol = d.cell_volume[:n_own]
        local = {
            "storage": d.dot(self.w_alpha, sp.c) - d.dot(self.w_alpha_prev, p.c_old),
            "decayed": dt * float(p.k.value) * d.dot(self.w_alpha, sp.c),
        }
        for name, f in p.sources.items():
            local[f"source:{name}"] = dt * float(d.cells_of(f)[:n_own] @ vol)
        for name, wr, c_ext in acc.robin_weights:
            local[f"efflux:{name}"] = dt * (d.dot(wr, sp.c) - c_ext * float(wr.sum()))
        keys = list(local)
        sums = d.comm.allreduce(np.array([local[k] for k in keys]), op=MPI.SUM)
        amounts = {k: to_ng(float(v)) for k, v in zip(keys, sums, strict=True)}
        for k, f in acc.forms["be"].items():
            amounts[k] = to_ng(d.comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM))
        return amounts

    def _assembled(self, acc: _Account, scheme: str) -> dict[str, float]:
        comm = self.disc.comm
        return {
            k: to_ng(comm.allreduce(fem.assemble_scalar(f), op=MPI.SUM))
            for k, f in acc.forms[scheme].items()
        }

    def totals(self, name: str) -> dict[str, float]:
        """Cumulative amounts (ng) of species ``name`` since t = 0."""
        return dict(self.accounts[name].totals)

    def error(self, name: str) -> float:
        """Relative error of the cumulative balance of ``name`` since t = 0.

        The change is the sum of the scheme's storage increments: for backward Euler
        that is exactly the change of ∫αc; for BDF2 its increments differ from it by
        ½[(Cᴺ−Cᴺ⁻¹) − (C¹−C⁰)], so the identity is checked on the increments.
        """
        tot = self.accounts[name].totals
        amounts = {
            "storage": tot.get("storage", 0.0),
            "source:released": tot["released"],
            "source:secreted": tot["secreted"],
            "source:dosed": tot["dosed"],
            "source:unbound": tot.get("unbound_from_carriers", 0.0),
            "sink": tot.get("bound_to_carriers", 0.0),
            "decayed": tot["decayed"],
            "taken_up": tot["uptake"],
            "efflux:all": tot["efflux"],  # Robin and Dirichlet, all facets
        }
        return balance_error(amounts)[1]

    # ------------------------------------------------------------------ part protocol
    def fields(self) -> dict[str, fem.Function]:
        return {}

    def state(self) -> ModelState:
        return ModelState(scalars={"totals": {n: dict(a.totals) for n, a in self.accounts.items()}})

    def restore(self, state: ModelState) -> None:
        """Totals from ``state``; the weights from the (already restored) material."""
        for name, acc in self.accounts.items():
            acc.totals = dict(state.scalars["totals"][name])
        self.refresh_weights()

    def destroy(self) -> None:
        """Nothing to free (forms only)."""
