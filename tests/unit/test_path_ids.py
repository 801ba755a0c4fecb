"""Ids are checked against their documented shapes before they go into a URL path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tasksync.dal.chartmogul_api import ChartMogulClient
from tasksync.dal.close_api import CloseClient
from tasksync.dal.path_ids import close_id, safe_path, uuid_id
from tasksync.errors import InvalidInput

# Nothing listens here: a check that let a call through would fail with a connection error.
UNREACHABLE = "http://127.0.0.1:9"

HOSTILE = [
    "..",
    "task_..",
    "task_abc/../../webhook",
    "task_abc%2F..%2Fwebhook",
    "task_abc?x=1",
    "task_abc#frag",
    "task_",
    "Task_abc",
    "_abc",
    "",
    "task_abc\n",
    "task_ábc",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_a_close_id_of_another_shape_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        close_id(None, value, "close.task.id")
    assert caught.value.field == "close.task.id"


def test_real_close_ids_pass() -> None:
    for prefix, value in [
        ("task", "task_CIRBr39mOsTfWAc3ErihkSt4cX0PlVBpTovHGNj939w"),
        ("lead", "lead_mtonPqjLkC0X93AW6evKVa1Sbpq7l8opyuaV5olT2Cf"),
        ("user", "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as"),
        ("whsub", "whsub_1vT2aEze4uUzQlqLIBExYl"),
        ("ev", "ev_34bKnJcMX9UnRJmuGH5Jtr"),
    ]:
        assert close_id(prefix, value, "id") == value
    # Tasks of other types carry other prefixes (noti_… in Close's examples): shape only.
    assert close_id(None, "noti_4DjCxmYDzDEpyMTP4zRzYIjY9GzmnsDtjN7aJFhbYQu", "id").startswith("noti_")
    with pytest.raises(InvalidInput):
        close_id("lead", "user_8HHUh3SH67YzD8IMakjKoJ9SWputzlUdaihCG95g7as", "id")


@pytest.mark.parametrize("value", ["5d6ec2cc-280d-11f0-b50e-5bd43fc8c28c", "5D6EC2CC-280D-11F0-B50E-5BD43FC8C28C"])
def test_a_uuid_passes(value: str) -> None:
    assert uuid_id(value, "task_uuid") == value


@pytest.mark.parametrize("value", ["..", "../customers", "5d6ec2cc-280d-11f0-b50e-5bd43fc8c28c/..", "cus_1", " "])
def test_anything_but_a_uuid_is_invalid_input(value: str) -> None:
    with pytest.raises(InvalidInput):
        uuid_id(value, "task_uuid")


@pytest.mark.parametrize("path", ["/task/../webhook/", "/tasks/..", "/a/./b", "/task/x%2F..%2Fy/", "/task/%2e%2e/"])
def test_no_dot_segment_or_encoded_slash_reaches_a_request(path: str) -> None:
    with pytest.raises(InvalidInput):
        safe_path(path)


CLOSE_CALLS: list[Callable[[CloseClient, str], Any]] = [
    lambda client, value: client.get_task(value),
    lambda client, value: client.get_user(value),
    lambda client, value: client.get_lead(value),
    lambda client, value: client.get_event(value),
    lambda client, value: client.get_webhook(value),
    lambda client, value: client.update_webhook(value, status="active"),
    lambda client, value: client.delete_webhook(value),
]


@pytest.mark.parametrize("call", CLOSE_CALLS)
@pytest.mark.parametrize("value", ["../webhook", "task_a/../../webhook", "user_1%2F.."])
def test_close_client_refuses_a_misshapen_id_before_any_request(call: Callable[..., Any], value: str) -> None:
    client = CloseClient(base_url=UNREACHABLE, api_key="k")
    with pytest.raises(InvalidInput):
        call(client, value)
    assert client.calls == 0


@pytest.mark.parametrize("value", ["..", "../customers", "00000000-0000-0000-0000-000000000000/.."])
def test_chartmogul_client_refuses_a_task_uuid_that_is_not_a_uuid(value: str) -> None:
    client = ChartMogulClient(base_url=UNREACHABLE, api_key="k")
    with pytest.raises(InvalidInput):
        client.get_task(value)
    with pytest.raises(InvalidInput):
        client.delete_task(value)
    assert client.calls == 0
