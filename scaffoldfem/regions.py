"""The one table of region names and tags, shared by Gmsh and the solver.

Cells and facets are tagged with the integers below in the Gmsh model (as
physical groups named by the keys) and in the DOLFINx meshtags. Every other
module asks for a region by name through :func:`cell_tag`/:func:`facet_tag`.
"""

from __future__ import annotations

#: Volume regions (physical groups of dimension 3).
CELL_TAGS: dict[str, int] = {
    "white_matter": 1,
    "grey_matter": 2,
    "scar": 3,
    "scaffold": 4,
    "channel": 5,
    "cavity": 6,
}

#: Surface regions (physical groups of dimension 2).
FACET_TAGS: dict[str, int] = {
    "pia": 11,
    "rostral_end": 12,
    "caudal_end": 13,
    "scaffold_interface": 14,
}

#: Regions derived by the solver from a tagged region (not Gmsh physical groups, so
#: meshes, materials and every use of the parent are unchanged): name -> parent.
#: ``dorsal_horn``: the laminae I-II-like dorsal cap of grey matter within a fixed
#: band of the lesion (config/dorsal_horn.py, model/exposure.py); it has grey-matter
#: properties because it is grey matter.
DERIVED_CELL_REGIONS: dict[str, str] = {"dorsal_horn": "grey_matter"}

#: Host tissue (the cord as it was before the implant).
HOST_REGIONS = ("white_matter", "grey_matter", "scar")
#: Regions made of the implant.
IMPLANT_REGIONS = ("scaffold", "channel")


def cell_tag(name: str) -> int:
    """Return the integer tag of cell region ``name`` (KeyError names the choices)."""
    try:
        return CELL_TAGS[name]
    except KeyError:
        raise KeyError(f"unknown cell region {name!r}; known: {', '.join(CELL_TAGS)}") from None


def facet_tag(name: str) -> int:
    """Return the integer tag of facet region ``name`` (KeyError names the choices)."""
    try:
        return FACET_TAGS[name]
    except KeyError:
        raise KeyError(f"unknown facet region {name!r}; known: {', '.join(FACET_TAGS)}") from None


def cell_name(tag: int) -> str:
    """Return the name of cell tag ``tag``."""
    return {v: k for k, v in CELL_TAGS.items()}[int(tag)]
