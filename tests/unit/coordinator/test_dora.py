"""The delivery figures on a fixed timeline worked out by hand, their edges, and properties that
hold on any timeline: pure functions, no store, no clock."""

from __future__ import annotations

import dataclasses
import random

import pytest

from coordinator.policy.dora import DeliveryFigures, DeploymentFact, delivery_figures, percentile

H = 3_600_000  # an hour, in ms
T0 = 1_790_000_000_000  # the timeline's origin (a day in 2026), in ms
HOUR_S = 3600.0


def at(hours: float) -> int:
    return T0 + round(hours * H)


def fact(
    id: int,
    environment: str,
    status: str,
    start_h: float,
    finish_h: float | None,
    commit: str | None = None,
    commit_h: float | None = None,
    redeploys: int | None = None,
) -> DeploymentFact:
    return DeploymentFact(
        id=id,
        environment=environment,
        status=status,
        started_at_ms=at(start_h),
        finished_at_ms=None if finish_h is None else at(finish_h),
        commit=commit,
        commit_time_ms=None if commit_h is None else at(commit_h),
        redeploys=redeploys,
    )


# The timeline, in hours after T0. The deploy lock keeps each environment's deployments apart.
#
# id env     status     start finish commit at  redeploys  what it is
#  1 prod    succeeded    0     1    c1    -5   -          before any window below but context
#  2 staging succeeded    3     4    c2     2   -          lead 2h
#  3 prod    succeeded    5     6    c2     2   -          lead 4h
#  4 prod    failed       8     9    c3     7   -          failure: prod outage opens at 9
#  5 prod    failed      10    11    c3     7   -          failure, the same outage
#  6 prod    succeeded   12    14    c4    11   -          restores prod: 14-9 = 5h; lead 3h
#  7 staging succeeded    5     6    -      -   -          no commit: no lead time
#  8 staging failed       7     8    c5     6   -          failure: staging outage opens at 8
#  9 staging succeeded    9    10    c5     6   -          restores staging: 10-8 = 2h; lead 4h
# 10 prod    succeeded   16    18    c6    15   -          lead 3h; rolled back from (by 11)
# 11 prod    succeeded   20    21    c4    11   6          rollback to 6 (current was 10); no lead
# 12 staging succeeded   12    13    c5     6   -          re-run of c5 (delivered by 9): no lead
# 13 staging canceled    14    15    c7    13   -          canceled: in no figure
# 14 staging running     22     -    c8    21   -          still running: in no figure
# 15 prod    succeeded   27    28    c9    26   -          finishes after now=26: not known yet
TIMELINE = (
    fact(1, "prod", "succeeded", 0, 1, "c1", -5),
    fact(2, "staging", "succeeded", 3, 4, "c2", 2),
    fact(3, "prod", "succeeded", 5, 6, "c2", 2),
    fact(4, "prod", "failed", 8, 9, "c3", 7),
    fact(5, "prod", "failed", 10, 11, "c3", 7),
    fact(6, "prod", "succeeded", 12, 14, "c4", 11),
    fact(7, "staging", "succeeded", 5, 6),
    fact(8, "staging", "failed", 7, 8, "c5", 6),
    fact(9, "staging", "succeeded", 9, 10, "c5", 6),
    fact(10, "prod", "succeeded", 16, 18, "c6", 15),
    fact(11, "prod", "succeeded", 20, 21, "c4", 11, redeploys=6),
    fact(12, "staging", "succeeded", 12, 13, "c5", 6),
    fact(13, "staging", "canceled", 14, 15, "c7", 13),
    fact(14, "staging", "running", 22, None, "c8", 21),
    fact(15, "prod", "succeeded", 27, 28, "c9", 26),
)

# The figures, worked out by hand from the table (lead times and restores in hours).
#
# window   env      counted (in window)        ok  freq/day        failed+rolled  leads    restores
# 2..26    all      2,3,4,5,6,7,8,9,10,11,12    8  8/1 = 8         4,5,8,10: 4/11 2,3,3,4,4 2,5
# 2..26    prod     3,4,5,6,10,11               4  4               4,5,10: 3/6    3,3,4     5
# 2..26    staging  2,7,8,9,12                  4  4               8: 1/5         2,4       2
# 10..26   all      5,6,9,10,11,12              5  5/(16/24)=7.5   5,10: 2/6      3,3,4     2,5 (*)
# 15..26   all      10,11                       2  2/(11/24)=48/11 10: 1/2        3         -
# 26..28   all      15                          1  1/(2/24)=12     0/1            2         -
# 30..40   all      -                           0  0               -              -         -
#
# (*) prod's outage opened at 9, before the window, and ended at 14, inside it: 5h. Deployment
# 12 still has no lead time though 9 (which delivered c5) is outside the window.
# Nearest rank: the median of n values is the ceil(n/2)-th, the p90 the ceil(0.9n)-th, so
# median(2,3,3,4,4) = 3, p90 = 4; median(3,3,4) = 3; median(2,4) = 2, p90(2,4) = 4;
# median(2,5) = 2.


def figures(since_h: float, now_h: float, environment: str | None = None) -> DeliveryFigures:
    return delivery_figures(
        TIMELINE, since_ms=at(since_h), now_ms=at(now_h), environment=environment
    )


def hours(value: float | None) -> float | None:
    return None if value is None else value / HOUR_S


def summary(result: DeliveryFigures) -> tuple[object, ...]:
    return (
        result.deployments,
        result.deployment_frequency_per_day,
        result.change_failure_rate,
        hours(result.lead_time_s.median),
        hours(result.lead_time_s.p90),
        hours(result.time_to_restore_s.median),
    )


def test_dora_all_environments_over_the_whole_window() -> None:
    result = figures(2, 26)
    assert (result.environment, result.since_ms) == (None, at(2))
    assert summary(result) == (11, pytest.approx(8.0), pytest.approx(4 / 11), 3.0, 4.0, 2.0)


def test_dora_env_filter_keeps_one_environment() -> None:
    prod = figures(2, 26, "prod")
    assert prod.environment == "prod"
    assert summary(prod) == (6, pytest.approx(4.0), pytest.approx(0.5), 3.0, 4.0, 5.0)
    staging = figures(2, 26, "staging")
    assert summary(staging) == (5, pytest.approx(4.0), pytest.approx(0.2), 2.0, 4.0, 2.0)


def test_dora_a_window_cutting_the_start_keeps_the_history_as_context() -> None:
    result = figures(10, 26)
    assert summary(result) == (6, pytest.approx(7.5), pytest.approx(1 / 3), 3.0, 4.0, 2.0)


def test_dora_a_window_after_the_restores_has_no_time_to_restore() -> None:
    result = figures(15, 26)
    assert summary(result) == (2, pytest.approx(48 / 11), pytest.approx(0.5), 3.0, 3.0, None)


def test_dora_a_deployment_finishing_after_now_is_not_known_yet() -> None:
    assert figures(26, 27).deployments == 0
    assert summary(figures(26, 28)) == (1, pytest.approx(12.0), 0.0, 2.0, 2.0, None)


def test_dora_an_empty_window_measures_zero_frequency_and_nothing_else() -> None:
    empty = (0, 0.0, None, None, None, None)
    assert summary(figures(30, 40)) == empty
    assert summary(figures(2, 26, "qa")) == empty
    assert summary(delivery_figures([], since_ms=0, now_ms=H)) == empty


def test_dora_running_and_canceled_deployments_count_nowhere() -> None:
    # Only deployments 13 (canceled) and 14 (running) touch this staging window.
    result = figures(14, 26, "staging")
    assert summary(result) == (0, 0.0, None, None, None, None)


def test_dora_document_has_exactly_the_fields_of_the_cli_contract() -> None:
    document = dataclasses.asdict(figures(2, 26))
    assert set(document) == {
        "environment",
        "since_ms",
        "deployments",
        "deployment_frequency_per_day",
        "lead_time_s",
        "change_failure_rate",
        "time_to_restore_s",
    }
    assert set(document["lead_time_s"]) == {"median", "p90"}
    assert document["lead_time_s"] == {"median": 3 * HOUR_S, "p90": 4 * HOUR_S}
    assert document["time_to_restore_s"] == {"median": 2 * HOUR_S}


def test_percentile_is_nearest_rank() -> None:
    tens = [10.0, 1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0]
    assert (percentile(tens, 50), percentile(tens, 90), percentile(tens, 100)) == (5.0, 9.0, 10.0)
    assert percentile(tens, 91) == 10.0  # rank ceil(9.1) = 10
    assert percentile(tens, 1) == 1.0
    assert (percentile([4.0, 2.0], 50), percentile([4.0, 2.0], 90)) == (2.0, 4.0)
    assert percentile([7.0], 50) == percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None
    for wrong in (0, 101, -5):
        with pytest.raises(ValueError, match="outside"):
            percentile(tens, wrong)


def test_dora_commit_clock_ahead_gives_zero_lead_time_not_negative() -> None:
    ahead = [fact(1, "prod", "succeeded", 0, 1, "c1", 3)]
    result = delivery_figures(ahead, since_ms=at(0), now_ms=at(24))
    assert (result.lead_time_s.median, result.lead_time_s.p90) == (0.0, 0.0)


def test_dora_rollbacks_mark_the_current_deployment_unless_it_is_the_same() -> None:
    base = [
        fact(1, "prod", "succeeded", 0, 1, "c1", 0),
        fact(2, "prod", "succeeded", 2, 3, "c2", 2),
    ]
    # Redeploying what runs now (or a rollback of it) replaces nothing.
    again = [*base, fact(3, "prod", "succeeded", 4, 5, "c2", 2, redeploys=2)]
    assert figures_of(again).change_failure_rate == 0.0
    twice = [*again, fact(4, "prod", "succeeded", 6, 7, "c2", 2, redeploys=2)]
    assert figures_of(twice).change_failure_rate == 0.0
    # A failed rollback to 1 still judged 2 bad: 2 and the rollback itself count, 2 of 3.
    failed = [*base, fact(3, "prod", "failed", 4, 5, "c1", 0, redeploys=1)]
    assert figures_of(failed).change_failure_rate == pytest.approx(2 / 3)
    # A rollback in another environment says nothing of this one's deployments.
    elsewhere = [*base, fact(3, "staging", "succeeded", 4, 5, "c1", 0, redeploys=1)]
    assert figures_of(elsewhere).change_failure_rate == 0.0
    # One that took no time at all (started and finished in the same ms) still replaced 2.
    instant = [*base, fact(3, "prod", "succeeded", 4, 4, "c1", 0, redeploys=1)]
    assert figures_of(instant).change_failure_rate == pytest.approx(1 / 3)
    # A rollback still running has not finished: nothing is rolled back from yet.
    running = [*base, fact(3, "prod", "running", 4, None, "c1", 0, redeploys=1)]
    assert figures_of(running).change_failure_rate == 0.0


def test_dora_a_successful_rollback_restores_and_has_no_lead_time() -> None:
    timeline = [
        fact(1, "prod", "succeeded", 0, 1, "c1", 0),
        fact(2, "prod", "failed", 2, 3, "c2", 2),
        fact(3, "prod", "succeeded", 5, 7, "c1", 0, redeploys=1),
    ]
    result = figures_of(timeline)
    assert hours(result.time_to_restore_s.median) == 4.0
    assert hours(result.lead_time_s.median) == 1.0  # deployment 1's only
    # Nor when the deployment it redeploys is older than the facts given.
    assert figures_of(timeline[1:]).lead_time_s.median is None


def test_dora_a_canceled_deployment_neither_opens_nor_ends_an_outage() -> None:
    timeline = [
        fact(1, "prod", "failed", 0, 1, "c1", 0),
        fact(2, "prod", "canceled", 2, 3, "c2", 2),
        fact(3, "prod", "succeeded", 4, 5, "c2", 2),
        fact(4, "prod", "canceled", 6, 7, "c3", 6),
    ]
    assert hours(figures_of(timeline).time_to_restore_s.median) == 4.0


def test_dora_window_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="after it ends"):
        delivery_figures(TIMELINE, since_ms=at(5), now_ms=at(4))
    assert figures(5, 5).deployment_frequency_per_day is None


def figures_of(timeline: list[DeploymentFact]) -> DeliveryFigures:
    return delivery_figures(timeline, since_ms=at(-1), now_ms=at(100))


def random_timeline(seed: int, count: int = 40) -> list[DeploymentFact]:
    """Deployments one after another per environment (as the deploy lock keeps them), with
    every status, commit-less ones, re-runs and rollbacks to earlier ones."""
    rng = random.Random(seed)
    facts: list[DeploymentFact] = []
    clock_h = {"prod": 0.0, "staging": 0.0, "qa": 0.0}
    for number in range(1, count + 1):
        environment = rng.choice(sorted(clock_h))
        start = clock_h[environment] + rng.uniform(0.1, 5)
        finish = start + rng.uniform(0.01, 2)
        clock_h[environment] = finish
        earlier = [f.id for f in facts if f.environment == environment]
        commit = rng.choice(["c1", "c2", "c3", None, f"n{number}"])
        facts.append(
            fact(
                number,
                environment,
                rng.choice(["succeeded"] * 4 + ["failed"] * 2 + ["canceled", "running"]),
                start,
                None if rng.random() < 0.05 else finish,
                commit,
                None if commit is None else start - rng.uniform(-0.5, 30),
                rng.choice(earlier) if earlier and rng.random() < 0.2 else None,
            )
        )
    return facts


SEEDS = range(25)


@pytest.mark.parametrize("seed", SEEDS)
def test_dora_properties_hold_on_any_timeline(seed: int) -> None:
    timeline = random_timeline(seed)
    since_ms, now_ms = at(10), at(80)
    result = delivery_figures(timeline, since_ms=since_ms, now_ms=now_ms)
    rate = result.change_failure_rate
    assert rate is None or 0.0 <= rate <= 1.0
    assert (rate is None) == (result.deployments == 0)
    lead = result.lead_time_s
    assert (lead.median is None) == (lead.p90 is None)
    if lead.median is not None and lead.p90 is not None:
        assert 0.0 <= lead.median <= lead.p90
    restore = result.time_to_restore_s.median
    assert restore is None or restore > 0
    shuffled = random.Random(seed).sample(timeline, len(timeline))
    assert delivery_figures(shuffled, since_ms=since_ms, now_ms=now_ms) == result
    per_environment = [
        delivery_figures(timeline, since_ms=since_ms, now_ms=now_ms, environment=name)
        for name in ("prod", "staging", "qa")
    ]
    assert sum(part.deployments for part in per_environment) == result.deployments
    frequency = result.deployment_frequency_per_day or 0.0
    assert sum(p.deployment_frequency_per_day or 0.0 for p in per_environment) == pytest.approx(
        frequency
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_dora_frequency_scales_with_the_window(seed: int) -> None:
    timeline = random_timeline(seed)
    last_h = max((f.finished_at_ms or 0) - T0 for f in timeline) / H
    # The same deployments over a window twice as long (the extra half before any of them):
    # half the frequency, every other figure unchanged.
    short = delivery_figures(timeline, since_ms=at(0), now_ms=at(last_h))
    long = delivery_figures(timeline, since_ms=at(-last_h), now_ms=at(last_h))
    assert long.deployment_frequency_per_day == pytest.approx(
        (short.deployment_frequency_per_day or 0.0) / 2
    )
    assert dataclasses.replace(long, since_ms=short.since_ms, deployment_frequency_per_day=0) == (
        dataclasses.replace(short, deployment_frequency_per_day=0)
    )
    # The same timeline repeated three times, a period apart, over three periods: the same
    # frequency as one period over one.
    period_h = last_h + 1
    repeated = [
        dataclasses.replace(
            f,
            id=f.id + copy * 1000,
            started_at_ms=f.started_at_ms + round(copy * period_h * H),
            finished_at_ms=None
            if f.finished_at_ms is None
            else f.finished_at_ms + round(copy * period_h * H),
            redeploys=None if f.redeploys is None else f.redeploys + copy * 1000,
        )
        for copy in range(3)
        for f in timeline
    ]
    one = delivery_figures(timeline, since_ms=at(0), now_ms=at(period_h))
    three = delivery_figures(repeated, since_ms=at(0), now_ms=at(3 * period_h))
    assert three.deployments == 3 * one.deployments
    assert three.deployment_frequency_per_day == pytest.approx(one.deployment_frequency_per_day)
