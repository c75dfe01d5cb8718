"""Initial guesses projected on a solver's last solutions (for
:class:`~scaffoldfem.fem.solver.LinearSolver`).

A transport field changes smoothly from step to step, so its next level lies close to
the space spanned by its last few. For an SPD system ``A x = b`` the best guess in a
space ``W`` in the energy norm is the Galerkin projection

    x₀ = W c,   (Wᵀ A W) c = Wᵀ b,

which for ``W = [x, h₀ − h₁, h₁ − h₂]`` (the current iterate ``x`` and the
differences of the last solutions ``h₀, h₁, h₂``) contains both the last level (the
plain warm start) and its linear and quadratic extrapolations in the step index, with
the weights chosen by the system itself, whatever Δt, the sources or the
coefficients did (Fischer 1998, Comput. Methods Appl. Mech. Eng. 163:193, the
projection of successive right-hand sides). Its A-norm error is never larger than the
plain warm start's. CG's stopping test compares the residual with ``rtol ‖b‖``, so a
better guess means fewer iterations at the same tolerance. Measured on the medium
baseline (2 ranks, day 15): ROS 7 → 0, BDNF 8 → 0, MMP-2 8 → 4, MMP-9 11 → 2, GDNF 9
→ 2, NT-3 (its delivery changing) 10 → 9 iterations (``docs/model.md`` §8).

The products of the differences, ``A (hⱼ − hⱼ₊₁)``, are kept until the matrix changes
(its PETSc state), so a step between coefficient refreshes costs two matrix-vector
products (``A x`` and the newest difference's) and one reduction of the small Gram
system, not one product per basis vector. (Kept as products of the differences, not
as ``A hⱼ − A hⱼ₊₁``: that difference of nearly equal vectors loses the digits the
guess needs: measured, the medium baseline's elasticity took 178 instead of 68 CG
iterations.) A kept product has the bits a new one would have, so the guess does not
depend on when it was computed. Nearly dependent directions are dropped (eigenvalues
of the scaled Gram matrix under :data:`DROP`), so the guess is never
worse-conditioned than its basis.
"""

from __future__ import annotations

import numpy as np
from petsc4py import PETSc

from scaffoldfem.config.study_checks import GUESS_KEY, MAX_GUESS_LEVELS

__all__ = ["DROP", "GUESS_KEY", "MAX_GUESS_LEVELS", "ProjectedGuess"]

#: Directions of the scaled Gram matrix with eigenvalues under this fraction of the
#: largest are dropped (numerically dependent: successive levels nearly coincide).
DROP = 1.0e-12


def _destroy(vecs: list[PETSc.Vec | None]) -> None:
    for v in vecs:
        if v is not None:
            v.destroy()


class ProjectedGuess:
    """The last ``levels`` solutions of each unknown a solver serves, and the Galerkin
    guess they span (see the module doc).

    Args:
        levels: Stored solutions per unknown (the basis has ``levels`` vectors: the
            current iterate and ``levels − 1`` differences); 0 switches the guess off.
    """

    def __init__(self, levels: int = 3):
        if not 0 <= levels <= MAX_GUESS_LEVELS:
            raise ValueError(f"{GUESS_KEY} (levels) must be from 0 to {MAX_GUESS_LEVELS}")
        self.levels = int(levels)
        self._history: dict[int, list[PETSc.Vec]] = {}
        #: ``A (hⱼ − hⱼ₊₁)`` per stored difference (None: not computed for the current
        #: matrix), and the matrix (handle, state) they belong to.
        self._products: dict[int, list[PETSc.Vec | None]] = {}
        self._matrix: dict[int, tuple[int, int]] = {}
        self._work: list[PETSc.Vec] = []

    def _vectors(self, like: PETSc.Vec, n: int) -> list[PETSc.Vec]:
        while len(self._work) < n:
            self._work.append(like.duplicate())
        return self._work[:n]

    def apply(self, A: PETSc.Mat, b: PETSc.Vec, x: PETSc.Vec, key: int) -> bool:
        """Collective: overwrite the guess ``x`` of unknown ``key`` with its projection
        on ``[x, h₀ − h₁, ...]`` (with one stored solution: the best multiple of ``x``;
        nothing before the first); True if ``x`` changed (the caller then resets its
        Dirichlet values)."""
        hist = self._history.get(key, [])
        if self.levels == 0 or not hist:
            return False
        k = len(hist)  # the basis: x and k − 1 differences
        work = self._vectors(x, k)
        basis, kept = [x, *work[: k - 1]], self._kept(A, key)
        for j in range(k - 1):
            hist[j].copy(basis[j + 1])
            basis[j + 1].axpy(-1.0, hist[j + 1])
            if kept[j] is None:
                kept[j] = x.duplicate()
                A.mult(basis[j + 1], kept[j])
        products = [work[k - 1], *kept]
        A.mult(x, products[0])
        arrays = [w.getArray(readonly=True) for w in basis]
        a_arrays = [aw.getArray(readonly=True) for aw in products]
        b_arr = b.getArray(readonly=True)
        iu = np.triu_indices(k)
        local = np.concatenate([
            [arrays[i] @ a_arrays[j] for i, j in zip(*iu, strict=True)],
            [w @ b_arr for w in arrays]])
        total = np.empty_like(local)
        A.getComm().tompi4py().Allreduce(local, total)
        G = np.zeros((k, k))
        G[iu] = total[: len(iu[0])]
        G = G + np.triu(G, 1).T
        f = total[len(iu[0]):]
        d = np.sqrt(np.maximum(np.diag(G), 0.0))
        use = d > 0
        if not use.any():
            return False
        s = np.where(use, 1.0 / np.where(use, d, 1.0), 0.0)
        lam, V = np.linalg.eigh(G * np.outer(s, s))
        keep = lam > DROP * max(lam.max(), 0.0)
        if not keep.any():
            return False
        c = s * (V[:, keep] @ ((V[:, keep].T @ (s * f)) / lam[keep]))
        # x ← Σ c_j w_j, with x itself the first basis vector: scale it, then add.
        x.scale(c[0])
        for cj, w in zip(c[1:], basis[1:], strict=True):
            x.axpy(cj, w)
        return True

    def _kept(self, A: PETSc.Mat, key: int) -> list[PETSc.Vec | None]:
        """The kept difference products of ``key``; all dropped if ``A`` changed."""
        prods = self._products[key]
        state = (A.handle, A.stateGet())
        if self._matrix.get(key) != state:
            self._matrix[key] = state
            _destroy(prods)
            prods[:] = [None] * len(prods)
        return prods

    def record(self, x: PETSc.Vec, key: int) -> None:
        """Store ``x`` as the newest solution of unknown ``key`` (the oldest drops out)."""
        if self.levels == 0:
            return
        hist = self._history.setdefault(key, [])
        prods = self._products.setdefault(key, [])
        if len(hist) >= self.levels:
            newest = hist.pop()
            if prods:  # the difference with the dropped solution
                _destroy([prods.pop()])
        else:
            newest = x.duplicate()
        x.copy(newest)
        hist.insert(0, newest)
        if len(hist) > 1:
            prods.insert(0, None)  # x − h₁: computed at the next apply

    def get(self, key: int) -> list[np.ndarray]:
        """The stored solutions of unknown ``key``, newest first (owned entries, copies)."""
        return [v.getArray(readonly=True).copy() for v in self._history.get(key, [])]

    def put(self, key: int, arrays: list[np.ndarray], like: PETSc.Vec) -> None:
        """Replace the stored solutions of unknown ``key`` by ``arrays`` (newest first,
        owned entries as :meth:`get` gave them; none: start afresh); ``like`` has the
        layout."""
        _destroy(self._history.pop(key, []))
        _destroy(self._products.pop(key, []))
        self._matrix.pop(key, None)
        if not self.levels or not arrays:
            return
        hist = self._history[key] = []
        for a in arrays[: self.levels]:
            v = like.duplicate()
            v.setArray(np.asarray(a, dtype=PETSc.ScalarType))
            hist.append(v)
        self._products[key] = [None] * (len(hist) - 1)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The stored solutions (owned entries) as ``{prefix}guess<key>_<level>``
        arrays, for an in-memory snapshot of the model (``ModelState.local``)."""
        return {f"{prefix}guess{key}_{j}": a
                for key in self._history for j, a in enumerate(self.get(key))}

    def load(self, prefix: str, arrays: dict[str, np.ndarray], like: PETSc.Vec) -> None:
        """Replace the stored solutions by those :meth:`arrays` gave under ``prefix``
        (none there, e.g. a checkpoint: start afresh); ``like`` has the layout."""
        self.forget()
        found: dict[int, dict[int, np.ndarray]] = {}
        head = f"{prefix}guess"
        for name, a in arrays.items():
            if name.startswith(head):
                key, level = name[len(head):].split("_")
                found.setdefault(int(key), {})[int(level)] = a
        for key, levels in found.items():
            self.put(key, [levels[j] for j in sorted(levels)], like)

    def forget(self) -> None:
        """Drop every stored solution (e.g. after the state was restored)."""
        for vecs in (*self._history.values(), *self._products.values()):
            _destroy(vecs)
        self._history.clear()
        self._products.clear()
        self._matrix.clear()

    def destroy(self) -> None:
        """Free the PETSc vectors (collective)."""
        self.forget()
        for v in self._work:
            v.destroy()
        self._work.clear()
