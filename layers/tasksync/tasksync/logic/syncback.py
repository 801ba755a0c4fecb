"""Sync-back: a completion or reopening done in ChartMogul is written back to Close (opt-in).

ChartMogul sends no task webhooks and has no "updated since" filter, so the reconciler looks,
every SYNC_BACK_EVERY_PASSES-th pass, at what is cheapest to list: ChartMogul's *open* tasks
(`completed=false`, 200 a page). Against the links the sync holds, the differences are the
candidates: a link we pushed open whose task is not in the list (completed, or deleted, in
ChartMogul), and a link we pushed completed whose task is in it (reopened). Each candidate is
confirmed with a GET on both sides before anything is written.

The rule (`decide`, pure): Close stays the source of truth for everything but the completion
state. A ChartMogul completion change wins when it is newer than both Close's last change to
the task (`date_updated`) and our last write to the link; then the Close task is completed or
reopened with `PUT /task/{id}/`. Otherwise Close wins and ChartMogul is aligned to it. A task
deleted in ChartMogul is only reported; Close is not changed.

No echo: the link records what was written (`completion_synced_back`), so the next pass finds
ChartMogul agreeing with the link, and the Close webhook our PUT causes finds the link already
holding the new state: at most the completion time is aligned, never a second Close write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from tasksync.errors import ApiError, ConcurrentUpdate, NotFound, PermanentApiError
from tasksync.logic.completions import reopen_confirmed
from tasksync.logic.ports import ChartMogulApi, CloseTaskWriter, SyncBackLedger, SyncBackLinks, TimeLeft
from tasksync.logic.syncback_report import SyncBackReport, WriteBack
from tasksync.logic.translate import utc_timestamp
from tasksync.models._parsing import format_utc
from tasksync.models.chartmogul import ChartMogulTask
from tasksync.models.close import CloseTask
from tasksync.models.link import LinkState, TaskLink

# ChartMogul's largest page: a pass costs ceil(open tasks / 200) list calls plus its candidates.
LIST_PAGE_SIZE = 200
# Candidates confirmed per pass at most (2 GETs and at most one write each); the rest wait for
# the next pass, so that one pass stays well inside the reconciler's time and rate budget.
MAX_CANDIDATES_PER_PASS = 200


class Action(StrEnum):
    NOTHING = "nothing"  # ChartMogul agrees with what we pushed (or the change was ours)
    NOTE = "note"  # both sides already agree with each other: only the link catches up
    WRITE_CLOSE = "write_close"  # the ChartMogul change wins: complete/reopen the Close task
    ALIGN_CHARTMOGUL = "align_chartmogul"  # Close wins: ChartMogul gets Close's state back
    DELETED_IN_CHARTMOGUL = "deleted_in_chartmogul"  # reported; Close is not changed
    CLOSE_GONE = "close_gone"  # the Close task is deleted: its delete event settles the link


@dataclass(frozen=True)
class Decision:
    action: Action
    complete: bool | None = None  # the completion state to write
    conflict: bool = False  # both sides changed since our last sync; the later one won
    reason: str = ""


def _epoch(text: str | None) -> float | None:
    """ChartMogul's `updated_at` as epoch seconds; None when it is missing or unreadable."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def decide(link: TaskLink, chartmogul: ChartMogulTask | None, close: CloseTask | None) -> Decision:
    """What to do about one candidate, from the link and both sides as they are now. Pure."""
    if chartmogul is None:
        return Decision(Action.DELETED_IN_CHARTMOGUL, reason="the ChartMogul task is gone")
    pushed_complete = link.fields is not None and link.fields.completed_at is not None
    cm_complete = chartmogul.completed_at is not None
    if cm_complete == pushed_complete:
        return Decision(Action.NOTHING, reason="ChartMogul holds what we pushed")
    if close is None:
        return Decision(Action.CLOSE_GONE, reason="the Close task is gone")
    if close.is_complete == cm_complete:
        return Decision(Action.NOTE, complete=cm_complete, reason="both sides already agree")
    close_changed = close.date_updated.timestamp()
    # A Close version newer than the one we applied: the rep changed the task too.
    conflict = link.version is not None and format_utc(close.date_updated) > link.version
    cm_changed = _epoch(chartmogul.updated_at)
    if cm_changed is None:
        return Decision(Action.ALIGN_CHARTMOGUL, not cm_complete, conflict, "ChartMogul gave no updated_at")
    # Not newer than our last write to the link or to ChartMogul: the change is (or predates) ours.
    ours = max(link.updated_at, link.chartmogul_written_at)
    if cm_changed > close_changed and cm_changed > ours:
        return Decision(Action.WRITE_CLOSE, cm_complete, conflict, "the ChartMogul change is the latest")
    reason = "Close changed later" if cm_changed <= close_changed else "older than our last write"
    return Decision(Action.ALIGN_CHARTMOGUL, close.is_complete, conflict, reason)


def candidates(links: Iterable[TaskLink], open_in_chartmogul: set[str]) -> Iterator[TaskLink]:
    """Links whose pushed completion state differs from ChartMogul's list. Pure."""
    for link in links:
        if link.cm_task_uuid is None or link.fields is None:
            continue
        pushed_open = link.fields.completed_at is None
        if pushed_open != (link.cm_task_uuid in open_in_chartmogul):
            yield link


@dataclass(eq=False, kw_only=True)
class SyncBack:
    close: CloseTaskWriter
    chartmogul: ChartMogulApi
    links: SyncBackLinks
    ledger: SyncBackLedger
    every_passes: int = 1
    clock: Callable[[], float] = time.time

    def maybe_run(self, budget: TimeLeft | None = None) -> SyncBackReport | None:
        """Called on every reconciler pass: runs on every ``every_passes``-th one."""
        if self.every_passes > 1 and self.ledger.count_pass() % self.every_passes != 0:
            return None
        return self.run(budget)

    def run(self, budget: TimeLeft | None = None) -> SyncBackReport:
        """One pass; with a ``budget``, it stops between pages and candidates once it is spent."""
        cm_before, close_before = self.chartmogul.calls, self.close.calls
        now = self.clock()
        report = SyncBackReport(started_at=utc_timestamp(datetime.fromtimestamp(now, UTC)))
        try:
            self._pass(report, budget or _Unlimited())
        except ApiError as exc:
            report.failures.append(f"pass stopped: {exc}")
        report.chartmogul_calls = self.chartmogul.calls - cm_before
        report.close_calls = self.close.calls - close_before
        self.ledger.record(report)
        return report

    def _pass(self, report: SyncBackReport, budget: TimeLeft) -> None:
        links = list(self.links.active_links())
        report.checked = len(links)
        open_uuids: set[str] = set()
        for task in self.chartmogul.iter_tasks(completed=False, per_page=LIST_PAGE_SIZE):
            open_uuids.add(task.task_uuid)
            if len(open_uuids) % LIST_PAGE_SIZE == 0 and budget.spent:
                # A partial list would make every unlisted open task look completed.
                report.failures.append("pass stopped: the time budget ran out while listing")
                return
        report.listed = len(open_uuids)
        now = self.clock()
        found = list(candidates(links, open_uuids))
        # Those reported as unsettled wait until they change or are due again; the rest go
        # oldest-checked first, so that no group of candidates holds the others back.
        due = sorted((link for link in found if not link.sync_back_skips(now)), key=_check_order)
        report.reported_skipped = len(found) - len(due)
        report.candidates = len(due)
        taken = 0
        for link in due[:MAX_CANDIDATES_PER_PASS]:
            if budget.spent:
                break
            taken += 1
            self._candidate(link, report)
        report.deferred += len(due) - taken

    def _candidate(self, listed: TaskLink, report: SyncBackReport) -> None:
        # The list of links is as old as the pass: the worker may have moved this one since.
        link = self.links.get(listed.close_task_id)
        if link is None or link.state is not LinkState.ACTIVE or link.cm_task_uuid is None or link.fields is None:
            return
        if link.sync_back_skips(self.clock()):
            return
        try:
            self._settle(link, link.cm_task_uuid, report)
        except ConcurrentUpdate:
            report.deferred += 1  # the worker moved the link twice meanwhile: look again next pass
        except PermanentApiError as exc:
            if exc.api == "close" and exc.status in (401, 403):
                report.close_write_refused = f"Close refused the write (HTTP {exc.status}): the key cannot write"
                self._report(link, f"Close refused the write (HTTP {exc.status})")
            report.failures.append(f"{link.close_task_id}: {exc}")
        except ApiError as exc:
            report.failures.append(f"{link.close_task_id}: {exc}")

    def _settle(self, link: TaskLink, cm_task_uuid: str, report: SyncBackReport) -> None:
        try:
            cm_task = self.chartmogul.get_task(cm_task_uuid)
        except NotFound:
            report.deleted_in_chartmogul.append(link.close_task_id)
            self._report(link, "the ChartMogul task is gone")
            return
        if decide(link, cm_task, None).action is Action.NOTHING:
            return  # the list was older than the task: it agrees with us after all
        try:
            close_task: CloseTask | None = self.close.get_task(link.close_task_id)
        except NotFound:
            close_task = None
        decision = decide(link, cm_task, close_task)
        report.conflicts += int(decision.conflict)
        if close_task is None or decision.complete is None:
            if decision.action is Action.CLOSE_GONE:
                self._report(link, decision.reason)
            return
        match decision.action:
            case Action.NOTE:
                completed_at = _stamp(cm_task.completed_at)
                self._store(link, lambda now: _synced(completed_at, None, wrote_close=False, now=now))
                report.noted += 1
            case Action.WRITE_CLOSE:
                self._write_close(link, cm_task, decision.complete, decision, report)
            case Action.ALIGN_CHARTMOGUL:
                self._align_chartmogul(link, cm_task_uuid, close_task, decision.complete, decision, report)
            case _:
                pass

    def _write_close(
        self, link: TaskLink, cm_task: ChartMogulTask, complete: bool, decision: Decision, report: SyncBackReport
    ) -> None:
        answer = self.close.set_task_complete(link.close_task_id, complete)
        completed_at = _stamp(cm_task.completed_at) if complete else None
        version = format_utc(answer.date_updated)
        self._store(link, lambda now: _synced(completed_at, version, wrote_close=True, now=now))
        if complete:
            report.completions_written += 1
        else:
            report.reopenings_written += 1
        report.writes.append(
            WriteBack(link.close_task_id, cm_task.task_uuid, "close", complete, decision.conflict, decision.reason)
        )

    def _align_chartmogul(
        self,
        link: TaskLink,
        cm_task_uuid: str,
        close_task: CloseTask,
        complete: bool,
        decision: Decision,
        report: SyncBackReport,
    ) -> None:
        pushed = link.fields.completed_at if link.fields is not None else None
        completed_at = (pushed or utc_timestamp(close_task.date_updated)) if complete else None
        answer = self.chartmogul.update_task(cm_task_uuid, {"completed_at": completed_at})
        stamp = _epoch(answer.updated_at) if answer is not None else None

        def written(now: float) -> Callable[[TaskLink], TaskLink]:
            # Whatever came of it, the PATCH moved ChartMogul's updated_at: record it as ours.
            return lambda stored: stored.chartmogul_written(now=now, chartmogul_updated_at=stamp)

        if not complete and not reopen_confirmed(self.chartmogul, cm_task_uuid, answer):
            # UNVERIFIED upstream: whether a null completed_at reopens. The engine recreates the
            # task on the next Close event; the sync-back does not delete tasks on its own.
            reason = "ChartMogul kept the task completed"
            report.failures.append(f"{link.close_task_id}: {reason}")
            self._store(link, lambda now: _then(written(now), lambda s: s.sync_back_reported_as(reason, now)))
            return
        self._store(link, lambda now: _then(_synced(completed_at, None, wrote_close=False, now=now), written(now)))
        report.chartmogul_aligned += 1
        report.writes.append(
            WriteBack(link.close_task_id, cm_task_uuid, "chartmogul", complete, decision.conflict, decision.reason)
        )

    def _report(self, link: TaskLink, reason: str) -> None:
        """Mark the link as one this pass cannot settle, so that later passes skip it a while."""
        self._store(link, lambda now: lambda stored: stored.sync_back_reported_as(reason, now))

    def _store(self, link: TaskLink, change: Callable[[float], Callable[[TaskLink], TaskLink]]) -> None:
        """Save ``change`` of the link; when the worker moved it meanwhile, once more on the fresh one.

        What we wrote to either side must reach the link, or the next pass takes it for a person's.
        """
        now = self.clock()
        try:
            self.links.save(link, change(now)(link))
            return
        except ConcurrentUpdate:
            fresh = self.links.get(link.close_task_id)
        if fresh is None or fresh.state is not LinkState.ACTIVE or fresh.fields is None:
            return  # deleted or parked meanwhile: nothing left to settle on this link
        self.links.save(fresh, change(now)(fresh))


def _synced(
    completed_at: str | None, close_version: str | None, *, wrote_close: bool, now: float
) -> Callable[[TaskLink], TaskLink]:
    return lambda stored: stored.completion_synced_back(
        completed_at=completed_at, close_version=close_version, wrote_close=wrote_close, now=now
    )


def _then(
    first: Callable[[TaskLink], TaskLink], second: Callable[[TaskLink], TaskLink]
) -> Callable[[TaskLink], TaskLink]:
    return lambda stored: second(first(stored))


def _check_order(link: TaskLink) -> tuple[float, str]:
    return (link.sync_back_checked_at, link.close_task_id)


class _Unlimited:
    spent = False


def _stamp(completed_at: str | None) -> str | None:
    """ChartMogul's `completed_at` in the form we push (whole seconds, UTC, `Z`)."""
    if completed_at is None:
        return None
    return utc_timestamp(datetime.fromisoformat(completed_at.replace("Z", "+00:00")))
