"""Sandbox mode's two simulators: started, seeded with the demo data or resumed, saved at a clean stop.

Apart from the stack because none of it runs with the real APIs: the stack builds `Simulators`
only when no API key is set, so a run against the real Close and ChartMogul never imports the
simulator package.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tasksync.reconciler import subscribed_pairs

if TYPE_CHECKING:
    from tasksync_dev.local.persistence import Persistence
    from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
    from tasksync_dev.sandbox.close import CloseSimulator

# Demo assignees: the sandbox Close reps exist in the sandbox ChartMogul under the same emails;
# a task with no assignee goes to the success team's address.
SANDBOX_ASSIGNEE_MAP = '{"alice@sales.example": "alice@sales.example", "bob@sales.example": "bob@sales.example"}'
SANDBOX_DEFAULT_ASSIGNEE = "success@example.com"


class Simulators:
    """The Close and ChartMogul simulators of one sandbox run, and the demo ids they were seeded with."""

    def __init__(self, close: CloseSimulator, chartmogul: ChartMogulSimulator) -> None:
        self.close = close
        self.chartmogul = chartmogul
        self.ids: dict[str, str] = {}
        self.subscription_id: str | None = None
        self.signature_key: str | None = None
        # True when the state came from the last clean stop rather than from the sample data.
        self.resumed = False

    @classmethod
    def launch(cls, *, chartmogul_error_rate: float) -> Simulators:
        """Both simulators listening; ChartMogul's writes fail at ``chartmogul_error_rate`` when set."""
        from tasksync_dev.sandbox._server import FaultPlan  # noqa: PLC0415
        from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator  # noqa: PLC0415
        from tasksync_dev.sandbox.close import CloseSimulator  # noqa: PLC0415

        close = CloseSimulator()
        close.start()
        try:
            chartmogul = ChartMogulSimulator()
            chartmogul.start()
        except BaseException:
            close.stop()  # the stack's stop() only knows simulators that both started
            raise
        if chartmogul_error_rate:
            writes = frozenset({"POST", "PATCH", "DELETE"})
            chartmogul.inject(FaultPlan(error_rate=chartmogul_error_rate, methods=writes))
        return cls(close, chartmogul)

    def seed_or_resume(self, *, receiver_url: str, task_types: frozenset[str], persistence: Persistence) -> None:
        """Take back what the last clean stop saved, else seed the demo data and subscribe the receiver."""
        from tasksync_dev.sandbox.webhooks import loopback_sender  # noqa: PLC0415

        close, chartmogul = self.close, self.chartmogul
        saved = persistence.take_sandbox() if persistence.keeps_tables else None
        if saved is not None and saved.get("task_types") == sorted(task_types):
            close.restore(saved["close"])
            chartmogul.restore(saved["chartmogul"])
            self.ids = dict(saved["sandbox_ids"])
            self.subscription_id, self.signature_key = saved["subscription_id"], saved["signature_key"]
            self.resumed = True
            return
        self.ids = close.seed_demo()
        chartmogul_demo = chartmogul.seed_demo()
        self.ids["data_source"] = chartmogul_demo["data_source_uuid"]
        subscription = close.create_subscription(
            receiver_url,
            [{"object_type": object_type, "action": action} for object_type, action in subscribed_pairs(task_types)],
        )
        self.subscription_id = str(subscription["id"])
        self.signature_key = str(subscription["signature_key"])
        close.webhook_sender = loopback_sender(close)  # the sync-back's writes come back as webhooks

    def save(self, persistence: Persistence, task_types: frozenset[str]) -> None:
        """At a clean stop: what the simulators hold, for the next `make run` to resume."""
        persistence.save_sandbox(
            {
                "task_types": sorted(task_types),
                "close": self.close.snapshot(),
                "chartmogul": self.chartmogul.snapshot(),
                "sandbox_ids": dict(self.ids),
                "subscription_id": self.subscription_id,
                "signature_key": self.signature_key,
            }
        )

    def signature_keys(self) -> str:
        """The signature keys secret's value: what `tasksync webhook register` stores in AWS, by id."""
        return json.dumps({self.subscription_id: self.signature_key})

    def configure(self, environment: dict[str, str]) -> None:
        """Point the app at the simulators; demo assignees unless the user set their own."""
        from tasksync_dev.sandbox.close import BASE_PATH  # noqa: PLC0415

        environment.setdefault("ASSIGNEE_MAP", SANDBOX_ASSIGNEE_MAP)
        environment.setdefault("DEFAULT_ASSIGNEE", SANDBOX_DEFAULT_ASSIGNEE)
        environment.setdefault("CHARTMOGUL_DATA_SOURCE_UUID", self.ids["data_source"])
        environment.update(
            {
                "CLOSE_API_URL": self.close.url + BASE_PATH,
                "CLOSE_API_KEY": self.close.api_key,
                "CHARTMOGUL_API_URL": self.chartmogul.url + "/v1",
                "CHARTMOGUL_API_KEY": self.chartmogul.api_key,
                "CLOSE_WEBHOOK_SIGNATURE_KEY": self.signature_key or "",
            }
        )

    def stop(self) -> None:
        for simulator in (self.chartmogul, self.close):
            simulator.stop()
