"""One transport step's parameters, shared by its solver forms and its balance forms.

The residual, the linear system and every balance term of one field and one time
scheme come from the same :class:`TransportParams`, so the bookkeeping can never
drift from what the solver assembles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ufl
from dolfinx import fem

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.fem.cell_operator import CellCoefficients, is_cellwise
from scaffoldfem.fem.mass_action import MassTerm
from scaffoldfem.physics.transport import (
    Robin,
    Scheme,
    Uptake,
    balance_forms,
    transport_forms,
    transport_residual,
)


@dataclass(frozen=True)
class TransportParams:
    """Coefficients of ``∂(αc)/∂t = ∇·(D∇c) − αkc − U(c) − σc + Σ sources`` over one step.

    Attributes:
        c_old, alpha, alpha_old: Old level of c; α at the new and old level.
        D: Flux-basis diffusivity (UFL tensor, mm²/day).
        k: Decay rate (1/day), a Constant.
        dt: Step (day), a Constant.
        sources: Name → source (ng/mL/day); names become balance terms ``source:<name>``.
        dx, ds: Tagged measures.
        robin: Clearance conditions (``efflux:<facet>`` balance terms).
        uptake: Saturable uptake (Newton: the step is nonlinear).
        sink: Linear sink coefficient σ (1/day, per unit total volume; e.g. binding
            to a carrier's sites), balance term ``sink``; None: none.
        scheme: ``"be"`` or ``"bdf2"`` (then ``c_old2``, ``alpha_old2``, ``omega``).
    """

    c_old: fem.Function
    alpha: Any
    alpha_old: Any
    D: Any
    k: fem.Constant
    dt: fem.Constant
    sources: Mapping[str, Any]
    dx: ufl.Measure
    ds: ufl.Measure
    robin: tuple[Robin, ...] = ()
    uptake: Uptake | None = None
    sink: Any = None
    scheme: Scheme = "be"
    c_old2: fem.Function | None = None
    alpha_old2: Any = None
    omega: Any = 1.0

    def bdf2(self, c_old2: fem.Function, alpha_old2: Any, omega: fem.Constant) -> TransportParams:
        """The same step with BDF2 in time (level tⁿ⁻¹ and ω = Δtₙ/Δtₙ₋₁)."""
        return dataclasses.replace(
            self, scheme="bdf2", c_old2=c_old2, alpha_old2=alpha_old2, omega=omega
        )

    def old_level_mass(self) -> list[MassTerm]:
        """``LinearSolver(mass_rhs=...)`` of the step: the old level ``∫ α_old c_old / Δt
        v dx`` of a backward-Euler step when α_old is a DG0 Function, else none.
        (The solver checks the term against the form it was built from.)"""
        a = self.alpha_old
        if (self.scheme != "be" or not isinstance(a, fem.Function)
                or a.function_space.dofmap.dof_layout.num_dofs != 1):
            return []
        dt = self.dt
        return [(self.c_old, a, lambda: 1.0 / float(dt.value))]

    def cellwise(self) -> CellCoefficients | None:
        """``LinearSolver(cellwise=...)`` of the step: its matrix ``∫ (α/Δt + αk) c v
        + D∇c·∇v dx + ∫ σ c v dx_vertex`` as ``(w, D, σ)`` for the closed form, when it
        is a backward-Euler step with no uptake or clearance and cellwise-constant
        coefficients; else None (DOLFINx assembles it). The solver checks the
        coefficients against the form."""
        if self.scheme != "be" or self.uptake is not None or self.robin:
            return None
        w = self.alpha / self.dt + self.alpha * self.k
        return (w, self.D, self.sink) if is_cellwise(w, self.D, self.sink) else None

    @property
    def linear(self) -> bool:
        """True unless Newton-mode uptake makes the step nonlinear."""
        return self.uptake is None or self.uptake.mode != "newton"

    def _options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "robin": self.robin,
            "dx": self.dx,
            "ds": self.ds,
            "uptake": self.uptake,
            "sink": self.sink,
            "scheme": self.scheme,
        }
        if self.scheme == "bdf2":
            opts.update(c_old2=self.c_old2, alpha_old2=self.alpha_old2, omega=self.omega)
        return opts

    def _args(self) -> tuple[Any, ...]:
        return (self.c_old, self.alpha, self.alpha_old, self.D, self.k, self.dt, self.sources)

    def residual(self, c: fem.Function) -> ufl.Form:
        """Residual ``F(c; v)`` of the step with ``c`` the unknown Function."""
        v = ufl.TestFunction(c.function_space)
        return transport_residual(c, v, *self._args(), **self._options())

    def forms(self, V: fem.FunctionSpace) -> tuple[ufl.Form, ufl.Form]:
        """Bilinear and linear forms ``(a, L)`` of a linear step on ``V``."""
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        return transport_forms(u, v, *self._args(), **self._options())

    def balance(self, c: fem.Function) -> dict[str, ufl.Form]:
        """Every balance term of the step (:func:`~scaffoldfem.physics.transport.balance_forms`)."""
        return balance_forms(
            c,
            self.c_old,
            self.alpha,
            self.alpha_old,
            self.k,
            self.dt,
            self.sources,
            **self._options(),
        )
