"""LinksReadAhead: what a batch read ahead answers, once, and only while it is recent."""

from __future__ import annotations

from tasksync.dal.read_ahead import MAX_AGE_SECONDS, LinksReadAhead
from tasksync.models.link import TaskLink


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_link_read_ahead_answers_once_while_it_is_recent() -> None:
    clock = Clock()
    ahead = LinksReadAhead(clock=clock)
    link = TaskLink.unseen("task_1")
    ahead.replace({"task_1": link, "task_2": None})
    clock.now += MAX_AGE_SECONDS / 2
    assert ahead.take("task_1") == (True, link)
    assert ahead.take("task_1") == (False, None)
    assert ahead.take("task_2") == (True, None)


def test_a_link_read_ahead_too_long_ago_is_read_again() -> None:
    """A task whose turn comes late in the batch reads its link itself: another process may
    have changed it since, and a ChartMogul write would go out before the link write that
    notices."""
    clock = Clock()
    ahead = LinksReadAhead(clock=clock)
    ahead.replace({"task_1": TaskLink.unseen("task_1")}, read_at=clock.now)
    clock.now += MAX_AGE_SECONDS + 0.01
    assert ahead.take("task_1") == (False, None)


def test_a_write_drops_the_link_read_ahead() -> None:
    ahead = LinksReadAhead()
    ahead.replace({"task_1": None})
    ahead.drop("task_1")
    assert ahead.take("task_1") == (False, None)
