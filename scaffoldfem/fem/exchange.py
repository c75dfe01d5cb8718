"""MPI exchange of table rows between ranks (no DOLFINx here)."""

from __future__ import annotations

import numpy as np
from mpi4py import MPI

__all__ = ["alltoallv_rows"]


def alltoallv_rows(comm: MPI.Comm, dest: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Send row ``i`` of a float64 table to rank ``dest[i]``; return the rows received.

    One ``Alltoall`` of counts and one ``Alltoallv`` of data; received rows are
    ordered by source rank, then by their order on the source.
    """
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    ncol = rows.shape[1]
    if comm.size == 1:
        return rows.copy()
    order = np.argsort(dest, kind="stable")
    rows = np.ascontiguousarray(rows[order])
    send = np.bincount(np.asarray(dest)[order], minlength=comm.size).astype(np.int64)
    recv = np.empty_like(send)
    comm.Alltoall(send, recv)
    out = np.empty((int(recv.sum()), ncol))
    sdispl = np.r_[0, np.cumsum(send)[:-1]] * ncol
    rdispl = np.r_[0, np.cumsum(recv)[:-1]] * ncol
    comm.Alltoallv([rows, send * ncol, sdispl, MPI.DOUBLE], [out, recv * ncol, rdispl, MPI.DOUBLE])
    return out
