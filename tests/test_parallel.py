"""Worker pools: results in task order, keyed background tasks, errors passed back."""

from __future__ import annotations

import os

import pytest

from pipeline.parallel import Background, run_parallel


def _square(x: int) -> int:
    return x * x


def _niceness_and_square(x: int) -> tuple[int, int]:
    if x < 0:
        raise ValueError(f"negative task {x}")
    return os.nice(0), x * x


def test_run_parallel_keeps_task_order() -> None:
    assert run_parallel(_square, range(6), workers=2) == [0, 1, 4, 9, 16, 25]
    assert run_parallel(_square, [3], workers=2) == [9]


def test_background_results_by_key_in_lower_priority_workers() -> None:
    mine = os.nice(0)
    with Background(_niceness_and_square, {"a": 2, "b": 3, "bad": -1}, workers=2, nice=3) as bg:
        assert bg.result("b") == (min(mine + 3, 19), 9)
        assert bg.result("a") == (min(mine + 3, 19), 4)
        with pytest.raises(ValueError, match="negative task -1"):
            bg.result("bad")
