"""PyVista pictures (off-screen, rank 0 only). No DOLFINx here: pictures are drawn
from the files a run or the mesher left behind, so ``scaffoldfem plot`` can redraw
them anywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scaffoldfem.regions import CELL_TAGS
from scaffoldfem.viz.style import offscreen_pyvista

#: One colour per region, chosen to read at a glance (host pale, implant blue, scar ochre).
REGION_COLOURS = {
    "white_matter": "#e8e4da",
    "grey_matter": "#a89f91",
    "scar": "#c9812f",
    "scaffold": "#4a7fb5",
    "channel": "#9fd3ea",
    "cavity": "#e9d66b",
}


def read_msh_grid(path: Path):
    """Read a Gmsh file as a PyVista grid of tetrahedra with a ``region`` cell array."""
    import meshio

    pv = offscreen_pyvista()
    m = meshio.read(path)
    blocks, tags = [], []
    for block, phys in zip(m.cells, m.cell_data["gmsh:physical"], strict=True):
        if block.type == "tetra":
            blocks.append(block.data)
            tags.append(phys)
    cells = np.vstack(blocks)
    tag = np.concatenate(tags).astype(np.int32)
    grid = pv.UnstructuredGrid({pv.CellType.TETRA: cells}, m.points)
    grid.cell_data["region"] = tag
    return grid


def mesh_cutaway(msh: Path, png: Path, *, size: tuple[int, int] = (1400, 800)) -> Path:
    """Draw the cord with its dorsal-right quadrant cut away, regions coloured by name.

    Args:
        msh: Gmsh mesh with the physical groups of ``scaffoldfem.regions``.
        png: Output picture.
        size: Window size in pixels.

    Returns:
        ``png``.
    """
    pv = offscreen_pyvista()
    grid = read_msh_grid(msh)
    lo, hi = np.array(grid.bounds[0::2]), np.array(grid.bounds[1::2])
    centre = 0.5 * (lo + hi)
    length = hi[2] - lo[2]
    # Keep the caudal half (cut face through the lesion centre shows the channels in
    # cross-section) and remove the dorsal-right quadrant of the host so the scar and
    # the scaffold's length show.
    half = grid.clip(normal=(0, 0, -1), origin=centre, crinkle=False)
    host_tags = [CELL_TAGS["white_matter"], CELL_TAGS["grey_matter"]]
    pl = pv.Plotter(off_screen=True, window_size=list(size))
    pl.set_background("white")
    for name, tag in CELL_TAGS.items():
        part = half.extract_cells(np.flatnonzero(half.cell_data["region"] == tag))
        host = tag in host_tags
        if host and part.n_cells:  # a clean planar cut of the dorsal-right quadrant
            part = part.clip_box(
                [centre[0], hi[0] + 1, centre[1], hi[1] + 1, lo[2] - 1, hi[2] + 1],
                invert=True,
                crinkle=False,
            )
        if part.n_cells == 0:
            continue
        surf = part.extract_surface(algorithm="dataset_surface")
        pl.add_mesh(
            surf,
            color=REGION_COLOURS[name],
            opacity=0.45 if name == "white_matter" else 1.0,
            show_edges=not host,
            edge_color="#4d4d4d",
            line_width=0.2,
            label=name.replace("_", " "),
            smooth_shading=False,
        )
    # Legend text takes the entry colours: a dark box keeps the pale ones legible.
    pl.add_legend(
        bcolor="#3a3a3a", face="rectangle", size=(0.16, 0.22), loc="upper right", border=True
    )
    pl.add_axes(xlabel="x lateral", ylabel="y dorsal", zlabel="z caudal", color="black")
    r = 0.55 * length
    pl.camera_position = [
        (centre[0] + 0.55 * r, centre[1] + 0.45 * r, centre[2] - 0.95 * r),
        (centre[0], centre[1], centre[2] + 0.12 * length),
        (0, 1, 0),
    ]
    pl.add_text(
        "Default mesh: caudal half; host quadrant removed to show scar rim and 7-channel scaffold",
        font_size=10,
        color="black",
        position="upper_left",
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    pl.screenshot(str(png))
    pl.close()
    return png
