"""The delivery figures (DORA) of DESIGN §4.1, computed from deployment facts: pure, no clock.

The figures, over the deployments that finished in the window `since_ms..now_ms` (both ends
included), of one environment or of all:

- `deployments`: how many deployments finished in the window as succeeded or failed.
- `deployment_frequency_per_day`: the successful ones among them per day of window.
- `lead_time_s`: for each successful deployment in the window that brought a commit to its
  environment, its finish minus the commit's time; the median and the 90th percentile.
- `change_failure_rate`: the deployments in the window that failed or were rolled back from,
  over `deployments`.
- `time_to_restore_s`: for each outage of an environment (a failed deployment, or a run of them)
  ended by a successful deployment in the window, from the first failure's finish to the
  success's finish; the median.

A figure with nothing to measure is None ("null" in the CLI's document); a window holding no
deployment has a frequency of 0.0, which is a measurement, and a window of no length has no
frequency. A window that ends before it starts is the caller's mistake (ValueError).

Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value at
rank ceil(p * n / 100), counting from 1. So the median of 2 values is the lower one, and every
reported figure is one that was observed.

Decisions on the edges:

- Only succeeded and failed deployments count. One still running has no outcome yet; one
  canceled was stopped before it finished, and whether it changed anything is unknown (counting
  it as a failure would punish stopping a bad deployment; as a success, hide one). Both are left
  out of every figure. If a canceled deployment left the environment broken, the rollback or
  fix that follows shows it.
- A rollback (a deployment with `redeploys`) is a deployment: it counts in `deployments`, in the
  frequency when it succeeds, in the failure rate, and a successful one ends an outage. Its
  commit is an old one brought back, not a change delivered, so it has no lead time.
- "Rolled back from": a rollback that finished (succeeded or failed) marks the deployment that
  was current in its environment when it started (the latest successful one finished by then),
  unless that one already deploys what the rollback redeploys.
- A commit brings a change to an environment once: a later successful deployment of the same
  commit there (a re-run, not a rollback) has no lead time. A deployment without a commit (a
  source snapshot, not git) has none either.
- A commit timestamped after its deployment finished (the committer's clock runs ahead) has a
  lead time of 0 rather than a negative one.
- A failure not yet followed by a success is an outage still open: it counts in the failure
  rate but has no time to restore yet.
- Facts from before the window give context: the deployment current before a rollback, the
  first failure of an outage the window sees end, an earlier deployment of the same commit. So
  the caller passes the environment's whole history, not only the window's part. Facts finished
  after `now_ms` are ignored (not yet known at `now_ms`).
- With no environment filter, the figures pool every environment; lead time, outages and
  rollbacks are still worked out per environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from conveyor.states import JobStatus

_MS_PER_DAY = 86_400_000
_MS_PER_S = 1000
_COUNTED = frozenset({JobStatus.SUCCEEDED.value, JobStatus.FAILED.value})


@dataclass(frozen=True, kw_only=True)
class DeploymentFact:
    """What the figures need of one deployment record.

    `status` is the deployment's status as a job status value ("succeeded", "failed",
    "canceled", "running", ...); `finished_at_ms` is None while it runs; `commit` and
    `commit_time_ms` are None when its build had no git source; `redeploys` is the id of the
    deployment a rollback deployed again, None for any other deployment.
    """

    id: int
    environment: str
    status: str
    started_at_ms: int
    finished_at_ms: int | None
    commit: str | None = None
    commit_time_ms: int | None = None
    redeploys: int | None = None


@dataclass(frozen=True)
class LeadTime:
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class TimeToRestore:
    median: float | None


@dataclass(frozen=True)
class DeliveryFigures:
    """The `conveyor dora --json` document of DESIGN §8, field for field (`dataclasses.asdict`
    gives it); durations in seconds, the rate a fraction in 0..1."""

    environment: str | None
    since_ms: int
    deployments: int
    deployment_frequency_per_day: float | None
    lead_time_s: LeadTime
    change_failure_rate: float | None
    time_to_restore_s: TimeToRestore


def percentile(values: Sequence[float], p: int) -> float | None:
    """The p-th percentile (0 < p <= 100) of `values` by nearest rank; None for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is outside 1..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil(p * n / 100) in integers, no rounding error
    return ordered[rank - 1]


def delivery_figures(
    facts: Iterable[DeploymentFact],
    *,
    since_ms: int,
    now_ms: int,
    environment: str | None = None,
) -> DeliveryFigures:
    """The figures of `environment` (or of all, when None) over `since_ms..now_ms`."""
    if since_ms > now_ms:
        raise ValueError(f"the window starts ({since_ms}) after it ends ({now_ms})")
    known = [
        fact for fact in facts if _counted(fact, now_ms) and environment in (None, fact.environment)
    ]
    by_environment: dict[str, list[DeploymentFact]] = {}
    for fact in sorted(known, key=_finish_order):
        by_environment.setdefault(fact.environment, []).append(fact)
    in_window = [fact for fact in known if since_ms <= _finished(fact)]
    leads: list[float] = []
    restores: list[float] = []
    rolled_back: set[int] = set()
    for history in by_environment.values():
        leads += _lead_times(history, since_ms)
        restores += _restore_times(history, since_ms)
        rolled_back |= _rolled_back_from(history)
    failures = [f for f in in_window if f.status != JobStatus.SUCCEEDED or f.id in rolled_back]
    successes = sum(1 for fact in in_window if fact.status == JobStatus.SUCCEEDED)
    window_days = (now_ms - since_ms) / _MS_PER_DAY
    return DeliveryFigures(
        environment=environment,
        since_ms=since_ms,
        deployments=len(in_window),
        deployment_frequency_per_day=successes / window_days if window_days else None,
        lead_time_s=LeadTime(median=percentile(leads, 50), p90=percentile(leads, 90)),
        change_failure_rate=len(failures) / len(in_window) if in_window else None,
        time_to_restore_s=TimeToRestore(median=percentile(restores, 50)),
    )


def _counted(fact: DeploymentFact, now_ms: int) -> bool:
    return (
        fact.status in _COUNTED
        and fact.finished_at_ms is not None
        and fact.finished_at_ms <= now_ms
    )


def _finished(fact: DeploymentFact) -> int:
    # Only counted facts get here, and those have finished.
    assert fact.finished_at_ms is not None
    return fact.finished_at_ms


def _finish_order(fact: DeploymentFact) -> tuple[int, int]:
    # Ids break ties: two deployments finishing in the same millisecond keep the order they had.
    return (_finished(fact), fact.id)


def _lead_times(history: Sequence[DeploymentFact], since_ms: int) -> list[float]:
    """Lead times of one environment's successful deployments in the window (history in
    finish order)."""
    delivered: set[str] = set()
    leads: list[float] = []
    for fact in history:
        if fact.status != JobStatus.SUCCEEDED or fact.redeploys is not None:
            continue
        first_time = fact.commit is None or fact.commit not in delivered
        if fact.commit is not None:
            delivered.add(fact.commit)
        if first_time and fact.commit_time_ms is not None and _finished(fact) >= since_ms:
            leads.append(max(0, _finished(fact) - fact.commit_time_ms) / _MS_PER_S)
    return leads


def _restore_times(history: Sequence[DeploymentFact], since_ms: int) -> list[float]:
    """One environment's outages ended in the window, each from its first failure's finish to
    the next success's finish (history in finish order)."""
    restores: list[float] = []
    outage_since: int | None = None
    for fact in history:
        if fact.status != JobStatus.SUCCEEDED:
            outage_since = _finished(fact) if outage_since is None else outage_since
        elif outage_since is not None:
            if _finished(fact) >= since_ms:
                restores.append((_finished(fact) - outage_since) / _MS_PER_S)
            outage_since = None
    return restores


def _rolled_back_from(history: Sequence[DeploymentFact]) -> set[int]:
    """Ids of one environment's deployments that a rollback replaced (history in finish
    order)."""
    found: set[int] = set()
    for rollback in history:
        if rollback.redeploys is None:
            continue
        current = _current_at(history, rollback.started_at_ms, rollback.id)
        if current is not None and rollback.redeploys not in (current.id, current.redeploys):
            found.add(current.id)
    return found


def _current_at(
    history: Sequence[DeploymentFact], at_ms: int, exclude_id: int
) -> DeploymentFact | None:
    """The environment's latest successful deployment finished by `at_ms`."""
    current: DeploymentFact | None = None
    for fact in history:
        if _finished(fact) > at_ms:
            break
        if fact.status == JobStatus.SUCCEEDED and fact.id != exclude_id:
            current = fact
    return current
