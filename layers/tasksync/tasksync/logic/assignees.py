"""The assignee rule: which ChartMogul user a Close task is assigned to.

1. ASSIGNEE_MAP[close email] when the Close user's email is mapped (case-insensitive);
2. otherwise the Close user's own email (no configuration for teams with the same emails);
3. DEFAULT_ASSIGNEE only as a fallback: the task has no assignee, the Close user cannot be
   read (404), or ChartMogul refuses the assignee;
4. a refused email is remembered for a day, so the user's next task goes straight to the
   fallback (one ChartMogul call, not two); `tasksync status` lists the refused emails;
5. with no DEFAULT_ASSIGNEE there is nobody to fall back to: the engine parks a new task with
   the reason (which names the email) and leaves a mirrored task's assignee as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasksync.config import EngineSettings
from tasksync.errors import NotFound
from tasksync.logic.ports import AssigneeRefusals, CloseApi, LookupCache

# Users rarely change their email; a few hours keeps warm workers at zero Close calls.
USER_EMAIL_TTL_SECONDS = 6 * 3600
# Long enough that a rep's tasks of the day cost one call each; short enough that an operator
# who adds the user in ChartMogul sees their tasks assigned to them by the next day.
REFUSED_ASSIGNEE_TTL_SECONDS = 86400


@dataclass(frozen=True)
class AssigneeChoice:
    """Whom to send as the ChartMogul assignee, and why when it is not the Close user's choice.

    ``email`` is None when nobody can be named (rule 5): the engine parks a new task and keeps
    the assignee of a mirrored one.
    """

    email: str | None
    reason: str | None = None


@dataclass(eq=False)
class AssigneeResolver:
    settings: EngineSettings
    close: CloseApi
    cache: LookupCache
    refusals: AssigneeRefusals

    def choose(self, close_user_id: str | None, *, keep: str | None = None) -> AssigneeChoice:
        """The assignee to try first for a task assigned to ``close_user_id``.

        ``keep`` is the assignee a mirrored task already has in ChartMogul: when nobody else
        can be named (rule 5), the task keeps it rather than stop syncing.
        """
        if not close_user_id:
            return self._fallback("the task has no assignee", keep=keep)
        try:
            email = self._close_email(close_user_id)
        except NotFound:
            return self._fallback(f"Close user {close_user_id} cannot be read (404)", keep=keep)
        wanted = self.settings.chartmogul_assignee_for(email) if email else None
        if not wanted:
            return self._fallback(f"Close user {close_user_id} has no email", keep=keep)
        refusal = self.refusals.assignee_refusal(wanted)
        if refusal is not None:
            why = f"ChartMogul refused the assignee {wanted} ({refusal})"
            return self._fallback(why, refused=wanted, keep=keep)
        return AssigneeChoice(wanted)

    def refused(self, email: str, refusal: str, *, keep: str | None = None) -> AssigneeChoice:
        """ChartMogul refused ``email``: remember it, and say whom to send instead (if anyone)."""
        self.refusals.note_assignee_refusal(email, refusal, REFUSED_ASSIGNEE_TTL_SECONDS)
        return self._fallback(f"ChartMogul refused the assignee {email} ({refusal})", refused=email, keep=keep)

    def _fallback(self, why: str, *, refused: str | None = None, keep: str | None = None) -> AssigneeChoice:
        default = self.settings.default_assignee
        if default and not _same(default, refused):
            return AssigneeChoice(default, f"{why}: assigned to DEFAULT_ASSIGNEE")
        if keep and not _same(keep, refused):
            return AssigneeChoice(keep, f"{why}: the ChartMogul task keeps its assignee")
        if default:
            return AssigneeChoice(None, f"{why}, and it is DEFAULT_ASSIGNEE")
        hint = "; map it in ASSIGNEE_MAP" if refused else ""
        return AssigneeChoice(None, f"{why} and DEFAULT_ASSIGNEE is not set{hint}")

    def _close_email(self, close_user_id: str) -> str | None:
        email = self.cache.get_user_email(close_user_id)
        if email is None:
            user = self.close.get_user(close_user_id)
            email = (user.email or "").strip()
            if email:
                self.cache.put_user_email(close_user_id, email, USER_EMAIL_TTL_SECONDS)
        return email or None


def _same(email: str, other: str | None) -> bool:
    return other is not None and email.strip().lower() == other.strip().lower()
