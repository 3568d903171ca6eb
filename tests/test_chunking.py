"""Automatic chunk size: whole rounds of chunks over the cores, capped; explicit sizes kept."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from stellarflow import run
from stellarflow_contracts.errors import InputError


@pytest.mark.parametrize(("stars", "slots", "expected"), [
    (240, 2, 120),      # the benchmark: one chunk per core
    (241, 2, 121),
    (400, 2, 100),      # 300 per core would pass the cap: two rounds of 2 chunks
    (1, 2, 1),
    (3, 8, 1),          # fewer stars than cores: one star per chunk
    (100_000, 2, 150),
    (24, 1, 24),
])
def test_auto_chunk_size_on_known_cores(stars: int, slots: int, expected: int) -> None:
    assert run.auto_chunk_size(stars, slots) == expected


@pytest.mark.parametrize("stars", [1, 7, 240, 1000, 12_345, 200_000])
@pytest.mark.parametrize("slots", [1, 2, 3, 16, 64])
def test_auto_chunks_balance_the_cores_and_stay_capped(stars: int, slots: int) -> None:
    size = run.auto_chunk_size(stars, slots)
    chunks = math.ceil(stars / size)
    assert 1 <= size <= run.AUTO_CHUNK_MAX
    # The busiest core (chunks dealt round-robin) has at most one star per chunk it runs more
    # than an even share: no core waits a whole chunk for another.
    busiest = math.ceil(chunks / slots) * size
    assert busiest <= stars / slots + math.ceil(chunks / slots)
    assert chunks <= stars


def test_scheduler_sites_get_equal_bounded_chunks() -> None:
    assert run.auto_chunk_size(240, None) == 48
    assert run.auto_chunk_size(30, None) == 30
    assert run.auto_chunk_size(100_000, None) == run.SCHEDULER_CHUNK_MAX


def test_slots_follow_max_cores_then_the_profile_then_the_machine(monkeypatch) -> None:
    assert run.site_slots("local", "toil", ["--maxCores", "3"]) == 3
    assert run.site_slots("local", "toil", ["--maxCores=5", "--stats"]) == 5
    monkeypatch.setattr(run.os, "cpu_count", lambda: 7)
    assert run.site_slots("local", "toil", []) == 7
    assert run.site_slots("local", "cwltool", []) == 7
    assert run.site_slots("slurm", "toil", []) is None


def test_explicit_chunk_size_is_kept_and_checked() -> None:
    assert run.resolve_chunk_size(7, 240) == 7
    with pytest.raises(InputError, match="--chunk-size must be >= 1, got 0"):
        run.resolve_chunk_size(0, 240)


@pytest.mark.parametrize(("stars", "mb_per_star", "expected"), [
    (240, 1.29, 120),      # 60-day light curves: as before, one chunk per core
    (2400, 0.22, 600),     # 10 days: the cap grows to ~870 stars, 4 chunks of 600
    (2400, 1.29, 150),     # 60 days: 16 chunks of 150 as before
    (10_000, 0.11, 1000),  # 5 days: at most AUTO_CHUNK_STARS_MAX
    (1000, 16.0, 125),     # two-year light curves: never below AUTO_CHUNK_MAX's rounds
])
def test_auto_chunk_cap_follows_the_light_curves_size(stars: int, mb_per_star: float,
                                                     expected: int) -> None:
    assert run.auto_chunk_size(stars, 2, mb_per_star * 1e6) == expected
    assert run.auto_chunk_size(stars, None, mb_per_star * 1e6) == run.auto_chunk_size(stars, None)


def test_a_run_below_the_machines_cpus_is_confined_to_max_cores() -> None:
    mine = sorted(os.sched_getaffinity(0))
    assert run.run_cpus(None) is None  # a scheduler confines its own jobs
    assert run.run_cpus(len(mine)) is None and run.run_cpus(len(mine) + 4) is None
    if len(mine) > 1:
        assert run.run_cpus(1) == {mine[0]}
        with run.confined_to({mine[0]}):
            child = subprocess.run([sys.executable, "-c", "import os; print(sorted("
                                    "os.sched_getaffinity(0)))"], capture_output=True, text=True)
        assert child.stdout.strip() == f"[{mine[0]}]"
    assert sorted(os.sched_getaffinity(0)) == mine  # given back
