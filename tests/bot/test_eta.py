"""What the bot makes of the run times it learned: the ready time, and the window a run ends in."""

from __future__ import annotations

import math
import random

from bot.eta import MIN_RUNS, RunTimes
from bot.jobs import RunKind
from bot.poller import MAX_SLEEP, running_gap


def kind(seconds: float, resolution: str | None = None) -> RunKind:
    return RunKind("kling/2.1", seconds, resolution)


def learned(runs: dict[RunKind, list[float]]) -> RunTimes:
    times = RunTimes()
    times.load((kind, seconds) for kind, many in runs.items() for seconds in many)
    return times


def test_too_few_runs_give_no_estimate() -> None:
    times = learned({kind(5): [30.0] * (MIN_RUNS - 1)})
    assert times.estimate(kind(5)) is None
    times.load([(kind(5), 31.0)])
    assert times.estimate(kind(5)) is not None


def test_the_window_holds_nearly_every_run_of_a_spread_like_the_learned_ones() -> None:
    draw = random.Random(7)
    law = [30 * math.exp(draw.gauss(0, 0.12)) for _ in range(10_000)]
    estimate = learned({kind(5): law[:40]}).estimate(kind(5))
    assert estimate is not None
    low, high = estimate.window(2.326)
    inside = sum(low <= run <= high for run in law) / len(law)
    assert 0.9 <= inside < 1, inside  # 98 % for the true law; 40 runs estimate its spread
    assert abs(estimate.median - 30) < 2


def test_each_kind_has_its_own_estimate_and_a_new_run_changes_it() -> None:
    five, ten = kind(5), kind(10)
    times = learned({five: [29.0, 30.0, 31.0], ten: [50.0, 52.0, 54.0]})
    first = times.estimate(kind(10))
    assert first is not None and first.median == 52.0
    assert times.estimate(kind(10, resolution="1080p")) is None
    times.load([(ten, 90.0)])
    later = times.estimate(kind(10))
    assert later is not None and later.median == 53.0
    assert later.window(1)[1] > first.window(1)[1]


def test_the_law_follows_the_runs_shape_two_humps_included() -> None:
    draw = random.Random(3)
    humps = [(25 if i % 2 else 70) * math.exp(draw.gauss(0, 0.08)) for i in range(40)]
    law = learned({kind(5): humps}).estimate(kind(5))
    assert law is not None
    assert abs(law.survival(45) - 0.5) < 0.1  # half end in the first hump
    assert law.survival(18) > 0.9 and law.survival(100) < 0.1
    # Few end between the humps: less there than over the first hump's end.
    assert law.survival(38) - law.survival(48) < law.survival(22) - law.survival(32)
    assert law.quantile(0.99) > 70


def test_runs_all_alike_still_make_a_law_with_some_spread() -> None:
    law = learned({kind(5): [30.0] * 5}).estimate(kind(5))
    assert law is not None
    assert 0.3 < law.survival(30) < 0.7
    assert law.survival(28) > 0.9 and law.survival(32) < 0.1


def test_a_running_job_sleeps_until_its_runs_end_and_never_longer_than_the_cap() -> None:
    interval = 3.0
    usual = learned({kind(5): [29.0, 30.0, 31.0, 30.5, 29.5]}).estimate(kind(5))
    assert usual is not None
    first = running_gap("planned", interval, usual, 0.0)
    assert 10 < first < 30  # asleep while no run of the kind ends
    assert running_gap("planned", interval, usual, 30.0) < interval  # polled often there
    assert running_gap("planned", interval, usual, 600.0) == interval  # past its law: fixed's
    # Learned runs of 5 s and 600 s (a restart's), or a clock set back an hour: the cap.
    odd = learned({kind(10): [5.0, 600.0, 600.0, 600.0]}).estimate(kind(10))
    assert odd is not None
    assert max(running_gap("planned", interval, odd, age) for age in range(0, 900, 7)) <= (
        MAX_SLEEP * interval)
    assert running_gap("planned", interval, usual, -3600.0) == first  # as if just started
