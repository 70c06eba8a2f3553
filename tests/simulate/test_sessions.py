"""The BRAS address pool: the loop-free assignment equals the event-by-event FIFO it replaces."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from pipeline.simulate.sessions import ADDRESS_COOLDOWN_S, assign_pool_addresses


def fifo_pool_addresses(
    start_s: np.ndarray, stop_s: np.ndarray, pool_base: int, window_end_s: int
) -> np.ndarray:
    """The former implementation: events in (time, stops first, session) order, one at a time."""
    n = len(start_s)
    times = np.concatenate([start_s, stop_s])
    kinds = np.concatenate([np.ones(n, np.int8), np.zeros(n, np.int8)])
    ids = np.concatenate([np.arange(n), np.arange(n)])
    order = np.lexsort((ids, kinds, times))
    addr = np.zeros(n, dtype=np.int64)
    cooled: deque[tuple[int, int]] = deque()
    next_fresh = 0
    events = zip(times[order].tolist(), kinds[order].tolist(), ids[order].tolist(), strict=True)
    for t, kind, i in events:
        if kind == 0:
            if t < window_end_s:
                cooled.append((t + ADDRESS_COOLDOWN_S, addr[i]))
        elif cooled and cooled[0][0] <= t:
            addr[i] = cooled.popleft()[1]
        else:
            addr[i] = next_fresh
            next_fresh += 1
    return (pool_base + addr).astype(np.uint32)


@pytest.mark.parametrize("seed", range(12))
def test_pool_matches_the_event_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    grid = int(rng.choice([1, 60, 300]))  # coarse grids: many ties of starts, stops and cooldowns
    start = rng.integers(-20_000, 600_000, n) // grid * grid
    length = rng.choice([ADDRESS_COOLDOWN_S, 300, 3600, 50_000], n) + rng.integers(0, 2000, n)
    stop = start + np.maximum(
        length // grid * grid, grid
    )  # sessions last (session_times: >= 300 s)
    window_end = 600_000
    got = assign_pool_addresses(start, stop, 1 << 20, window_end)
    want = fifo_pool_addresses(start, stop, 1 << 20, window_end)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)


def test_back_to_back_users_reuse_addresses_after_the_cooldown() -> None:
    start = np.array([0, 10, 200, 250, 300])
    stop = np.array([100, 400, 1000, 260, 900])
    # session 0 frees address 0 at 100 (ready 220): 200 is too early, 250 takes it;
    # session 3 frees address 0 again at 260 (ready 380), after the window end (300): kept
    got = assign_pool_addresses(start, stop, 0, 300) - 0
    np.testing.assert_array_equal(got, [0, 1, 2, 0, 3])
    np.testing.assert_array_equal(got, fifo_pool_addresses(start, stop, 0, 300))
