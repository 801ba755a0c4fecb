"""An HTTP simulator of the parts of the Close API that tasksync uses.

It plays two roles. Over HTTP (under ``/api/v1``, trailing slashes like Close) it answers the
calls our client makes: tasks, users, leads, task-completed activities, the event log and
webhook subscriptions. In Python it is "a sales rep using Close": ``create_task``,
``complete_task``, ``delete_lead``... and every such change appends the events Close would
log (shared/research/close-api.md §2.5, §2.6, §5), so the reconciler and the webhook path see
the same event stream they would see in production.

Facts the research marks UNVERIFIED are simulated one plausible way and say so where it happens.

The simulator is split by role: close_event_log (the clock, the stores, the event log and the
webhook subscriptions),
close_state (the control API) and close_http (the routes). This module is where it is imported from.
"""

from tasksync_dev.sandbox.close_event_log import BASE_PATH, ORGANIZATION_ID
from tasksync_dev.sandbox.close_http import CloseRateWindow, CloseSimulator

__all__ = ["BASE_PATH", "ORGANIZATION_ID", "CloseRateWindow", "CloseSimulator"]
