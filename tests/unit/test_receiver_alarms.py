"""The receiver's alarms in template.yaml read metrics the receiver's handler really emits."""

from __future__ import annotations

from typing import Any

import pytest

from tasksync.receiver import METRIC_BY_OUTCOME
from tests.support.template import load_template

RECEIVER_METRICS = {"WebhooksAccepted", "WebhooksIgnored", "WebhooksRejected", "WebhooksFailed"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def emitted() -> set[str]:
    """The metric names the handler counts its outcomes under."""
    return set(METRIC_BY_OUTCOME.values())


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _metrics_read(alarm: dict[str, Any]) -> set[str]:
    names = {alarm["MetricName"]} if "MetricName" in alarm else set()
    names |= {
        query["MetricStat"]["Metric"]["MetricName"] for query in alarm.get("Metrics", []) if "MetricStat" in query
    }
    return names


def _alarm_reading(template: dict[str, Any], metric: str) -> dict[str, Any]:
    [alarm] = [alarm for alarm in _alarms(template).values() if metric in _metrics_read(alarm)]
    return alarm


def test_every_receiver_alarm_reads_a_metric_the_handler_emits(template: dict[str, Any], emitted: set[str]) -> None:
    read = {
        name for alarm in _alarms(template).values() for name in _metrics_read(alarm) if name.startswith("Webhooks")
    }
    assert read
    assert read <= emitted, f"alarms read metrics nobody emits: {sorted(read - emitted)}"


def test_the_handler_counts_stale_and_misconfigured_deliveries_apart(emitted: set[str]) -> None:
    assert {"WebhooksStale", "WebhooksMisconfigured"} <= emitted
    assert emitted >= RECEIVER_METRICS


def test_the_rejected_to_accepted_ratio_is_alarmed_over_15_minutes(template: dict[str, Any]) -> None:
    alarm = _alarm_reading(template, "WebhooksRejected")
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    stats = [query["MetricStat"] for query in queries.values() if "MetricStat" in query]
    assert {stat["Metric"]["MetricName"] for stat in stats} == {"WebhooksRejected", "WebhooksAccepted"}
    assert {stat["Period"] for stat in stats} == {900}
    assert {stat["Stat"] for stat in stats} == {"Sum"}
    [expression] = [query for query in queries.values() if query.get("ReturnData", True)]
    for name in (query_id for query_id, query in queries.items() if "MetricStat" in query):
        assert name in expression["Expression"]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_a_misconfigured_receiver_is_alarmed(template: dict[str, Any]) -> None:
    alarm = _alarm_reading(template, "WebhooksMisconfigured")
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_signature_tolerance_is_at_least_a_minute(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["SignatureToleranceSeconds"]
    assert parameter["MinValue"] == 60
    assert parameter["Default"] >= 60
