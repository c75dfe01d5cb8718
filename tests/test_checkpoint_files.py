"""Checkpoint files written in the background (rank 0's worker thread): the same bytes
as a direct write, whole files in order, the two newest kept, a failed write raised
in the run, the metadata as of the call. Serial and on 2 ranks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from scaffoldfem.files import BackgroundWrites
from scaffoldfem.run import checkpoint as ckpt


@pytest.fixture
def shared(tmp_path):
    """A directory all ranks use (rank 0's)."""
    return Path(MPI.COMM_WORLD.bcast(str(tmp_path), root=0))


def _arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"node:c": rng.random((500, 3)), "cell:phi": rng.random(800)}


def test_background_checkpoints_are_the_direct_ones_and_the_newest_two_kept(shared, comm):
    writes = BackgroundWrites()
    meta = {"model": {"t": 0.0, "nstep": 0}, "run": {"timing": {"solve": 1.0}}}
    try:
        for step in (1, 2, 3):
            meta["model"]["t"] = float(step)
            ckpt.save(shared / "bg", step, _arrays(step), meta, comm, writes)
            meta["run"]["timing"]["solve"] = -1.0  # changed after the call: not written
            ckpt.save(shared / "direct", step, _arrays(step), meta, comm)
            meta["run"]["timing"]["solve"] = 1.0
    finally:
        writes.close()
    comm.barrier()
    if comm.rank == 0:
        names = sorted(p.name for p in (shared / "bg").iterdir())
        assert names == ["ckpt_00000002.json", "ckpt_00000002.npz",
                         "ckpt_00000003.json", "ckpt_00000003.npz"]
        for name in names:
            direct = (shared / "direct" / name).read_bytes()
            background = (shared / "bg" / name).read_bytes()
            if name.endswith(".json"):
                # The direct save ran after the change: only that value differs.
                d, b = json.loads(direct), json.loads(background)
                assert b["meta"]["run"]["timing"]["solve"] == 1.0
                assert d["meta"]["run"]["timing"]["solve"] == -1.0
                d["meta"]["run"]["timing"]["solve"] = 1.0
                assert b == d
            else:
                assert background == direct
    arrays, meta_read = ckpt.load_latest(shared / "bg", comm)
    assert meta_read["model"] == {"t": 3.0, "nstep": 0}
    for k, v in _arrays(3).items():
        np.testing.assert_array_equal(arrays[k], v)


def test_background_jobs_run_one_at_a_time_in_order_and_raise_where_waited():
    writes = BackgroundWrites()
    order, running = [], []

    def job(k):
        def run():
            running.append(k)
            assert len(running) == 1  # never two at once
            time.sleep(0.02)
            order.append((k, threading.current_thread() is not threading.main_thread()))
            running.remove(k)
        return run

    for k in range(5):
        writes.submit(job(k))
    writes.wait()
    assert order == [(k, True) for k in range(5)]

    def fail():
        raise OSError(28, "No space left on device", "ckpt_00000009.npz")

    writes.submit(fail)
    with pytest.raises(OSError, match="No space left"):
        writes.wait()
    writes.submit(fail)
    with pytest.raises(OSError, match="No space left"):  # raised by the next submit too
        writes.submit(job(9))
    writes.close()
    writes.close()  # twice: nothing left to do
