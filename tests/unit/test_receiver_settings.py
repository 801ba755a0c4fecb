"""ReceiverSettings: the receiver's few variables, read without pydantic."""

from __future__ import annotations

import pytest

from tasksync.errors import InvalidInput
from tasksync.receiver_settings import VARIABLES, ReceiverSettings

QUEUE = {"QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/tasksync-events.fifo"}
KEY = "ab" * 32


def test_defaults_and_blank_values() -> None:
    settings = ReceiverSettings.from_env(
        {**QUEUE, "SIGNATURE_KEYS_SECRET_ARN": "arn:secret", "CLOSE_WEBHOOK_SIGNATURE_KEY": " "}
    )
    assert settings.queue_url == QUEUE["QUEUE_URL"]
    assert settings.signature_keys_secret_arn == "arn:secret"
    assert settings.close_webhook_signature_key is None
    assert settings.signature_tolerance_seconds == 300


def test_values_are_read() -> None:
    settings = ReceiverSettings.from_env(
        {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": " 60 "}
    )
    assert settings.close_webhook_signature_key == KEY
    assert settings.signature_tolerance_seconds == 60


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({**QUEUE}, "SIGNATURE_KEYS_SECRET_ARN"),
        (
            {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": "0"},
            "SIGNATURE_TOLERANCE_SECONDS",
        ),
        (
            {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": "59"},
            "SIGNATURE_TOLERANCE_SECONDS",
        ),
        ({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": f'"{KEY}"'}, "CLOSE_WEBHOOK_SIGNATURE_KEY"),
        ({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": f"0x{KEY}"}, "CLOSE_WEBHOOK_SIGNATURE_KEY"),
        ({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY[:-2]}, "CLOSE_WEBHOOK_SIGNATURE_KEY"),
        ({"CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "QUEUE_URL": "  "}, "QUEUE_URL"),
        (
            {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": "-1"},
            "SIGNATURE_TOLERANCE_SECONDS",
        ),
        (
            {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": "５"},
            "SIGNATURE_TOLERANCE_SECONDS",
        ),
        (
            {**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": ""},
            "SIGNATURE_TOLERANCE_SECONDS",
        ),
    ],
)
def test_bad_values_raise_an_error_naming_the_variable(environ: dict[str, str], name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ReceiverSettings.from_env(environ)
    assert caught.value.field == name


def test_the_key_never_shows_in_repr_or_errors() -> None:
    settings = ReceiverSettings.from_env({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY})
    assert KEY not in repr(settings)
    with pytest.raises(InvalidInput) as caught:
        ReceiverSettings.from_env({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": KEY})
    assert KEY not in str(caught.value)


class _Recording(dict[str, str]):
    """An environment that notes every variable looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def test_variables_names_every_variable_the_receiver_reads() -> None:
    # The local runner passes exactly these through to the receiver.
    environ = _Recording({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY})
    ReceiverSettings.from_env(environ)
    assert environ.read == VARIABLES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5m", "invalid SIGNATURE_TOLERANCE_SECONDS: expected a whole number"),
        ("30", "invalid SIGNATURE_TOLERANCE_SECONDS: expected a number of at least 60"),
    ],
)
def test_errors_are_worded_as_the_other_settings_word_them(value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ReceiverSettings.from_env({**QUEUE, "CLOSE_WEBHOOK_SIGNATURE_KEY": KEY, "SIGNATURE_TOLERANCE_SECONDS": value})
    assert str(caught.value) == message
