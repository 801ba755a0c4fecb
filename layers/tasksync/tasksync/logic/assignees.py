"""Assignee resolution: the Close user a task is assigned to becomes a ChartMogul user email."""

from __future__ import annotations

from tasksync.config import EngineSettings
from tasksync.logic.ports import CloseApi, LookupCache

# Users rarely change their email; a few hours keeps warm workers at zero Close calls.
USER_EMAIL_TTL_SECONDS = 6 * 3600


class AssigneeResolver:
    def __init__(self, settings: EngineSettings, close: CloseApi, cache: LookupCache) -> None:
        self.settings = settings
        self.close = close
        self.cache = cache

    def chartmogul_assignee(self, close_user_id: str | None) -> str | None:
        """The mapped ChartMogul email for the Close user (see EngineSettings.chartmogul_assignee_for)."""
        if not close_user_id:
            return self.settings.chartmogul_assignee_for(None)
        email = self.cache.get_user_email(close_user_id)
        if email is None:
            user = self.close.get_user(close_user_id)
            email = (user.email or "").strip()
            if email:
                self.cache.put_user_email(close_user_id, email, USER_EMAIL_TTL_SECONDS)
        return self.settings.chartmogul_assignee_for(email or None)

    @property
    def fallback(self) -> str | None:
        """Who gets a task whose assignee ChartMogul rejects (422)."""
        return self.settings.default_assignee
