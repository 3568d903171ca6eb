"""The star pool: the same chunk file with and without worker processes, a failing star and a
dying worker in the pool, and the worker count."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest

from stellarflow_contracts import chunk, pool
from stellarflow_contracts.errors import InputError

PARENT = os.getpid()


def write_input(path: Path, n: int) -> Path:
    ids = [f"star-{i:03d}" for i in range(n)]
    with h5py.File(path, "w") as f:
        f.attrs.update({"chunk_id": "chunk-0007", "observation_id": "obs", "stage": "prepared",
                        "contracts_version": "1.0.0"})
        f.attrs["star_ids"] = np.array(ids, dtype=h5py.string_dtype())
        for i, sid in enumerate(ids):
            g = f.create_group(f"stars/{sid}")
            g.attrs.update({"status": "failed" if i == 3 else "ok",
                            "error": "upstream: no data" if i == 3 else "", "cpu_s": 0.0})
            chunk.write_dataset(g, "flux", np.linspace(0, 1, 5000) * (i + 1), "")
    return path


def measure(ctx: chunk.StarContext) -> None:
    flux = ctx.need("prepared")["flux"][()]
    if ctx.star_id == "star-005":
        raise ValueError("bad star\non two lines")
    if ctx.star_id == "star-006":
        raise chunk.NotMeasurable("too short")
    chunk.write_dataset(ctx.out, "doubled", 2 * flux, "")
    ctx.out.attrs["mean"] = float(flux.mean())
    ctx.out.attrs["pid"] = os.getpid()


def run(tmp: Path, src: Path, workers: int, monkeypatch: pytest.MonkeyPatch,
        process=measure) -> tuple[Path, dict]:
    monkeypatch.setenv(pool.ENV_WORKERS, str(workers))
    out = tmp / f"w{workers}"
    out.mkdir()
    path = chunk.run_chunk(module="toy", version="0.1", stage="toy", inputs={"prepared": src},
                           primary="prepared", outdir=out, process=process)
    return path, json.loads((out / "chunk-0007.toy.summary.json").read_text())


def without_pid(summary: dict) -> dict:
    for star in summary["star"].values():
        star["attrs"].pop("pid", None)
    return summary


def test_workers_write_what_one_process_writes(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_input(tmp_path / "in.h5", 12)
    one, one_summary = run(tmp_path, src, 1, monkeypatch)
    three, three_summary = run(tmp_path, src, 3, monkeypatch)
    assert without_pid(one_summary) == without_pid(three_summary)
    star = three_summary["star"]
    assert star["star-003"] == {"status": "failed", "attrs": {"error": "upstream: no data"}}
    assert star["star-005"]["attrs"]["error"] == "toy: ValueError: bad star on two lines"
    assert star["star-006"]["attrs"]["note"] == "toy: too short"
    with h5py.File(one) as a, h5py.File(three) as b:
        for sid in ("star-000", "star-011"):
            assert np.array_equal(a[f"stars/{sid}/doubled"][()], b[f"stars/{sid}/doubled"][()])
            assert b[f"stars/{sid}/doubled"].attrs["units"] == ""
            assert b[f"stars/{sid}/doubled"].compression == "lzf"
        assert a["stars/star-000"].attrs["pid"] == PARENT
        pids = {int(b[f"stars/star-{i:03d}"].attrs["pid"]) for i in (0, 1, 2, 4, 7, 8, 9, 10)}
        assert PARENT not in pids and len(pids) >= 2  # the stars ran in the workers
        assert list(b.attrs["star_ids"]) == list(a.attrs["star_ids"])


def test_a_dying_worker_leaves_its_stars_to_this_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def dies_in_a_worker(ctx: chunk.StarContext) -> None:
        if ctx.star_id == "star-002" and os.getpid() != PARENT:
            os._exit(9)  # as if killed: no exception reaches the pool
        measure(ctx)

    src = write_input(tmp_path / "in.h5", 10)
    # A handler that only asks to stop (as a service's does), inherited by the workers: the
    # pool must still be able to stop the one left when the other dies.
    before = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        with caplog.at_level(logging.WARNING, logger="stellarflow"):
            _, summary = run(tmp_path, src, 2, monkeypatch, process=dies_in_a_worker)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert "a star worker process died" in caplog.text
    assert summary["stars"] == {"total": 10, "ok": 8, "failed": 2}  # star-003 and star-005
    assert summary["star"]["star-002"]["status"] == "ok"


def test_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pool.ENV_WORKERS, raising=False)
    assert pool.star_workers(1000) == len(os.sched_getaffinity(0))
    assert pool.star_workers(1) == 1
    monkeypatch.setenv(pool.ENV_WORKERS, "3")
    assert pool.star_workers(1000) == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(pool.ENV_WORKERS, bad)
        with pytest.raises(InputError, match="STELLARFLOW_STAR_WORKERS must be a whole number"):
            pool.star_workers(10)


def blas_threads(_state: object, _item: object) -> list[int]:
    from threadpoolctl import threadpool_info

    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_star_runs_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch, workers: str) -> None:
    """numpy's OpenBLAS starts a thread per CPU; in the pool (its workers, or this process
    when it has none) a star gets one, and this process gets its own count back after."""
    from threadpoolctl import threadpool_info

    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert before, "numpy has no BLAS that threadpoolctl sees"
    monkeypatch.setenv(pool.ENV_WORKERS, workers)
    with pool.StarPool(blas_threads, lambda: None, 4) as star_pool:
        seen = [threads for _, threads in star_pool.map(range(4), None)]
    assert seen == [[1] * len(before)] * 4
    assert [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"] == before
