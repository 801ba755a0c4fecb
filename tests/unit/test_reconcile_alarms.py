"""The reconciler's alarms in template.yaml watch the metrics its handler emits, and show on the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.template import REPO_ROOT, load_template

INTERVAL = {"Fn::FindInMap": ["ReconcileInterval", {"Ref": "ReconcileIntervalMinutes"}, "Seconds"]}
HANDLER = Path(REPO_ROOT, "functions", "reconciler", "app.py")


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    found: dict[str, Any] = load_template()["Resources"]
    return found


def _emitted_metrics() -> set[str]:
    return set(re.findall(r'add_metric\(\s*name="(\w+)"', HANDLER.read_text()))


@pytest.mark.parametrize(
    ("alarm", "metric", "statistic", "missing", "periods"),
    [
        ("ReconcileFailuresAlarm", "ReconcileFailures", "Sum", "notBreaching", 1),
        # Three intervals with no fresh checkpoint, or with no pass at all, alarm.
        ("ReconcileStalledAlarm", "ReconcileCheckpointAge", "Minimum", "breaching", 3),
    ],
)
def test_reconcile_alarms_watch_what_the_handler_emits(
    resources: dict[str, Any], alarm: str, metric: str, statistic: str, missing: str, periods: int
) -> None:
    properties = resources[alarm]["Properties"]
    assert properties["MetricName"] == metric
    assert metric in _emitted_metrics()
    assert properties["Namespace"] == "TaskSync"
    assert properties["Dimensions"] == [{"Name": "service", "Value": {"Ref": "AWS::StackName"}}]
    assert (properties["Statistic"], properties["TreatMissingData"]) == (statistic, missing)
    assert properties["Period"] == INTERVAL
    assert properties["EvaluationPeriods"] == properties.get("DatapointsToAlarm", 1) == periods
    assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]


def test_the_stalled_alarm_fires_above_one_interval(resources: dict[str, Any]) -> None:
    properties = resources["ReconcileStalledAlarm"]["Properties"]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (INTERVAL, "GreaterThanThreshold")


def test_the_dashboard_shows_the_reconcile_alarms_and_metrics(resources: dict[str, Any]) -> None:
    body, variables = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(variables) >= {"Namespace", "ReconcileSeconds"}
    # Substituted as CloudFormation would, the body must be JSON.
    text = re.sub(r"\$\{ReconcileSeconds\}", "300", body)
    text = re.sub(r"\$\{[^}]+\}", "x", text)
    widgets = json.loads(text)["widgets"]
    alarms = next(w for w in widgets if w["type"] == "alarm")["properties"]["alarms"]
    assert "${ReconcileFailuresAlarm.Arn}" in body
    assert "${ReconcileStalledAlarm.Arn}" in body
    assert len(alarms) == len([name for name in resources if name.endswith("Alarm")])
    shown = {m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"] if m[1] != "."}
    assert {
        "ReconcileEventsSeen",
        "ReconcileEventsAlreadyApplied",
        "ReconcileEventsEnqueued",
        "ReconcileCheckpointAge",
    } <= shown
