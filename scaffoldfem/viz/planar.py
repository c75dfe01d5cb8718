"""Planar slices as conforming triangles, and the region borders on them."""

from __future__ import annotations

import numpy as np

__all__ = ["border_edges", "planar_triangles"]


def planar_triangles(plane):
    """(PolyData, triangles, region per triangle) of a planar slice, made conforming.

    A plane through mesh vertices cuts edges at their ends: the points it duplicates
    there are merged, and the zero-area slivers it leaves are dropped (they carry no
    colour but would add false region borders).
    """
    t = plane.triangulate().clean(tolerance=1e-7, absolute=False, polys_to_lines=False,
                                  lines_to_points=False)
    pts = np.asarray(t.points)
    tri = (np.asarray(t.faces).reshape(-1, 4)[:, 1:] if t.n_cells
           else np.zeros((0, 3), dtype=np.int64))
    region = (np.asarray(t.cell_data["region"]) if "region" in t.cell_data
              else np.zeros(len(tri), dtype=int))
    if len(tri):
        e1, e2 = pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]]
        area = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
        ok = area > 1e-9 * max(float(np.sum(np.ptp(pts, axis=0) ** 2)), 1e-300)
        tri, region = tri[ok], region[ok]
    return t, tri, region


def border_edges(tri: np.ndarray, region: np.ndarray, npts: int) -> np.ndarray:
    """Point pairs (k, 2) of the edges between regions and on the outline."""
    e = np.sort(np.vstack([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    owner = np.tile(np.arange(len(tri)), 3)
    key = e[:, 0].astype(np.int64) * (npts + 1) + e[:, 1]
    order = np.argsort(key, kind="stable")
    key, e, owner = key[order], e[order], owner[order]
    first = np.r_[True, key[1:] != key[:-1]]
    last = np.r_[key[1:] != key[:-1], True]
    single = first & last
    pair = np.flatnonzero(~last)  # i and i + 1 share an edge
    differ = pair[region[owner[pair]] != region[owner[pair + 1]]]
    keep = np.r_[np.flatnonzero(single), differ]
    return e[keep]
