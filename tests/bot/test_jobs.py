"""A job's lifecycle: the moves it may make, which states are open, waiting or over, the words
a card shows for each, and what is derived from a job (its run time, its kind)."""

from __future__ import annotations

import itertools
import json
from collections import deque
from dataclasses import replace
from typing import Any

import pytest

from bot.jobs import OPEN, TERMINAL, TRANSITIONS, WAITING, Job, JobState, RunKind, sources

S = JobState


def job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": 7, "guild_id": 1, "channel_id": 2, "user_id": 3,
        "model_id": "kling/kling-2-1/pro/image-to-video", "command": "kling-2-1",
        "prompt": "a zebra", "body": {"prompt": "a zebra"}, "state": S.RUNNING,
        "request_id": "r7", "queue_position": None, "card_message_id": None,
        "result_message_id": None, "delivered_as": None, "video_url": None, "error": None,
        "estimated_usd": 0.5, "cost_usd": None, "created_at": 1000.0, "submitted_at": 1001.0,
        "started_at": None, "finished_at": None, "updated_at": 1001.0,
    }
    return Job(**(base | fields))


def reachable(start: JobState) -> set[JobState]:
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in TRANSITIONS.get(todo.popleft(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_happy_path_is_a_chain_of_allowed_moves() -> None:
    path = [S.ACCEPTED, S.SUBMITTING, S.QUEUED, S.RUNNING, S.FETCHED, S.DELIVERING,
            S.DELIVERED]
    assert all(b in TRANSITIONS[a] for a, b in itertools.pairwise(path))
    assert S.FETCHED in TRANSITIONS[S.QUEUED]  # a job can finish between two polls


@pytest.mark.parametrize(("target", "from_states"), [
    (S.ACCEPTED, set()),  # only ever the first state
    (S.SUBMITTING, {S.ACCEPTED}),
    (S.QUEUED, {S.SUBMITTING}),
    (S.RUNNING, {S.QUEUED}),
    (S.FETCHED, {S.QUEUED, S.RUNNING}),
    (S.DELIVERING, {S.FETCHED}),
    (S.DELIVERED, {S.DELIVERING}),
    (S.FAILED, {S.ACCEPTED, S.SUBMITTING, S.QUEUED, S.RUNNING}),
    (S.CANCELLED, {S.QUEUED, S.RUNNING}),  # nothing to cancel before RunComfy has it
    (S.TIMED_OUT, {S.QUEUED, S.RUNNING}),
    (S.OUTCOME_UNKNOWN, {S.SUBMITTING}),  # only a submit can go unanswered
    (S.UNDELIVERABLE, {S.QUEUED, S.RUNNING, S.FETCHED, S.DELIVERING}),
])
def test_where_each_state_can_be_reached_from(target: JobState,
                                              from_states: set[JobState]) -> None:
    assert sources(target) == frozenset(from_states)


def test_a_finished_job_never_moves_again() -> None:
    """Above all a job whose outcome is unknown: a retry is a new job, never a resubmit."""
    for state in TERMINAL:
        assert state not in TRANSITIONS
        assert all(state not in sources(target) for target in JobState)
    assert set(TRANSITIONS) == set(OPEN)


def test_every_state_is_reachable_and_every_open_job_can_end() -> None:
    assert reachable(S.ACCEPTED) == set(JobState)
    for state in OPEN:
        assert reachable(state) & TERMINAL, state
        assert state not in TRANSITIONS[state]  # no move to itself


def test_open_waiting_and_terminal() -> None:
    assert set(JobState) == OPEN | TERMINAL and not OPEN & TERMINAL
    assert {S.DELIVERED, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.OUTCOME_UNKNOWN,
            S.UNDELIVERABLE} == TERMINAL
    assert {S.QUEUED, S.RUNNING} == WAITING  # what the poller asks RunComfy about
    assert WAITING < OPEN
    assert [state for state in JobState if state.is_terminal] == sorted(
        TERMINAL, key=list(JobState).index)


def test_what_a_card_calls_each_state() -> None:
    assert {state.value: state.label for state in JobState} == {
        "accepted": "Starting", "submitting": "Starting", "queued": "Queued",
        "running": "Generating", "fetched": "Finishing", "delivering": "Posting",
        "delivered": "Done", "failed": "Failed", "cancelled": "Cancelled",
        "timed_out": "Timed out", "outcome_unknown": "Outcome unknown",
        "undeliverable": "Undeliverable",
    }


def test_elapsed_runs_from_the_submit() -> None:
    assert job(submitted_at=None, updated_at=2000.0).elapsed is None  # never sent
    assert job(submitted_at=1001.0, updated_at=1046.5).elapsed == 45.5  # under way
    assert job(submitted_at=1001.0, finished_at=1121.0, updated_at=1500.0,
               state=S.DELIVERED).elapsed == 120.0  # over: posting takes no run time


def test_a_run_kind_is_the_model_duration_and_resolution() -> None:
    five = job(seconds=5.0, resolution="1080P")
    assert RunKind.of(five) == RunKind("kling/kling-2-1/pro/image-to-video", 5.0, "1080P")
    other_prompt = replace(five, id=8, prompt="a cat", body={"prompt": "a cat"}, user_id=9)
    assert {RunKind.of(five), RunKind.of(other_prompt)} == {RunKind.of(five)}
    assert RunKind.of(five) != RunKind.of(replace(five, seconds=10.0))
    assert RunKind.of(job()) == RunKind("kling/kling-2-1/pro/image-to-video", None, None)


def test_a_job_read_from_a_row() -> None:
    """As either database returns it: the body as JSON text, yes/no columns as integers."""
    row = {f: getattr(job(), f) for f in Job.__dataclass_fields__} | {
        "body": json.dumps({"prompt": "a zebra", "duration": 10}), "state": "queued",
        "audio": 1, "simulated": 0}
    read = Job.from_row(row)
    assert read.body == {"prompt": "a zebra", "duration": 10}
    assert read.state is S.QUEUED and read.audio is True and read.simulated is False
    assert Job.from_row(row | {"audio": None, "simulated": 1}).audio is None
    assert Job.from_row(row | {"audio": 0}).audio is False
