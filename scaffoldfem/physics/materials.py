"""Material laws and presets as plain data (internal units: mm, day, ng/mL, kPa).

The laws are plain arithmetic, so they take floats, NumPy arrays or UFL
expressions alike. Presets are frozen dataclasses of floats with the source
of each number; the study config (written elsewhere) picks one and lets the
user override any field.

Diffusivity convention (see docs/model.md, "Effective diffusivity"): the
transport equation is written per unit *total* volume,
``∂(α c)/∂t = ∇·(D ∇c) − …``, so its ``D`` is the *effective* (flux-basis)
diffusivity, the flux per unit total area per unit gradient of the pore
concentration. For tissue ``D = α D_free / λ²`` (Nicholson's apparent
diffusivity ``D* = D_free/λ²`` times α). Bruggeman and Archie are flux-basis
laws by origin (conductivity of a mixture, formation factor); Mackie–Meares
gives the diffusivity *inside* the gel (apparent basis), so its flux-basis
value carries an extra factor φ. :func:`flux_diffusivity` applies this.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from scaffoldfem.config.presets import POLYMERS, TISSUE, DiffusivityLaw, PolymerPreset

__all__ = [
    "LAWS",
    "POLYMERS",
    "TISSUE",
    "PolymerPreset",
    "archie",
    "bruggeman",
    "cm2_per_s_to_mm2_per_day",
    "filled_diffusivity",
    "filled_modulus",
    "filled_volume_fraction",
    "flux_diffusivity",
    "gibson_ashby",
    "half_life_to_rate",
    "mackie_meares",
    "relative_diffusivity",
]



def cm2_per_s_to_mm2_per_day(d: float) -> float:
    """Convert a diffusivity from cm²/s (how it is published) to mm²/day."""
    return d * 100.0 * 86400.0


def half_life_to_rate(half_life: float) -> float:
    """First-order rate ``k = ln 2 / t½`` (same time unit as ``half_life``)."""
    return math.log(2.0) / half_life


# --- effective diffusivity laws -------------------------------------------------

def bruggeman(phi: Any) -> Any:
    """Bruggeman ``D_eff/D_free = φ^1.5`` (flux basis; Bruggeman 1935, Ann Phys 416:636)."""
    return phi**1.5


def mackie_meares(phi: Any) -> Any:
    """Mackie–Meares ``D_gel/D_free = (φ/(2−φ))²`` (apparent basis, inside the gel).

    Mackie & Meares 1955, Proc R Soc A 232:498; the standard obstruction model
    for solutes in hydrogels (Amsden 1998, Macromolecules 31:8382).
    """
    return (phi / (2.0 - phi)) ** 2


def archie(phi: Any, m: float = 2.0) -> Any:
    """Archie ``D_eff/D_free = φ^m`` (flux basis; Archie 1942, Trans AIME 146:54).

    ``m`` (cementation exponent) is ~1.3–2.5; ``m = 1.5`` is Bruggeman.
    """
    return phi**m


LAWS: dict[str, tuple[Any, Literal["effective", "apparent"]]] = {
    "bruggeman": (bruggeman, "effective"),
    "mackie_meares": (mackie_meares, "apparent"),
    "archie": (archie, "effective"),
}


def relative_diffusivity(phi: Any, law: DiffusivityLaw = "bruggeman", m: float = 2.0) -> Any:
    """The law's own ratio ``f(φ)`` as published (its basis is in :data:`LAWS`)."""
    fn, _ = LAWS[law]
    return fn(phi, m) if law == "archie" else fn(phi)


def flux_diffusivity(d_free: Any, phi: Any, law: DiffusivityLaw = "bruggeman",
                     m: float = 2.0) -> Any:
    """Flux-basis diffusivity ``D`` of a porous scaffold for the transport equation.

    Args:
        d_free: Free-solution diffusivity (mm²/day).
        phi: Porosity (accessible volume fraction), float/array/UFL.
        law: ``"bruggeman"``, ``"mackie_meares"`` or ``"archie"``.
        m: Archie exponent.

    Returns:
        ``D_free·f(φ)`` for flux-basis laws, ``D_free·φ·f(φ)`` for
        Mackie–Meares (apparent basis); equals ``D_free`` at φ = 1.
    """
    f = relative_diffusivity(phi, law, m)
    if LAWS[law][1] == "apparent":
        f = phi * f
    return d_free * f


def gibson_ashby(e_solid: Any, phi: Any, n: float = 2.0) -> Any:
    """Open-cell foam modulus ``E = E_s (1−φ)^n`` (Gibson & Ashby 1997, Cellular Solids, ch. 5)."""
    return e_solid * (1.0 - phi) ** n


# --- pores partly filled by ingrown tissue (rule of mixtures) --------------------
# Volume fractions of a scaffold cell: polymer 1 − φ, ingrown tissue φ f, fluid
# φ (1 − f), f the filled fraction of the pore space ([ingrowth]). At f = 0 each law
# is the scaffold's own; with the polymer gone (φ = 1) and f = 1, the tissue's.

def filled_volume_fraction(phi: Any, fill: Any, alpha_tissue: float) -> Any:
    """Accessible fraction ``φ (1 − f + f α_t)``: the fluid plus the tissue's ECS."""
    return phi * (1.0 - fill + fill * alpha_tissue)


def filled_diffusivity(d_pores: Any, fill: Any, d_tissue: float) -> Any:
    """``D/D_free = f_law(φ) (1 − f + f d_t)``: the pore network's geometric factor
    times the relative diffusivity of what fills it (fluid 1, tissue
    ``d_t = α_t/λ_t²``, flux basis)."""
    return d_pores * (1.0 - fill + fill * d_tissue)


def filled_modulus(e_skeleton: Any, phi: Any, fill: Any, e_tissue: float) -> Any:
    """Voigt mixture ``E_skeleton + φ f E_t``: the polymer skeleton (Gibson–Ashby) and the
    tissue in its pores carry load side by side."""
    return e_skeleton + phi * fill * e_tissue
