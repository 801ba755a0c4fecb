"""The subscription ids the reconciler watches: in the StateTable, mirrored by every secret write."""

from __future__ import annotations

import json

from tasksync.dal.subscriptions import SubscriptionDirectory
from tasksync_dev.cli.signature_secret import SignatureKeySecret
from tests.support.aws import Secrets
from tests.support.dynamodb import StateTables

KEY = "ab" * 32


def test_ids_round_trip_and_an_empty_list_is_stored_as_empty(state_tables: StateTables) -> None:
    directory = SubscriptionDirectory(state_tables.client, state_tables.state)
    assert directory.subscription_ids() == []
    directory.replace(["whsub_b", "whsub_a", "whsub_a"])
    assert directory.subscription_ids() == ["whsub_a", "whsub_b"]
    directory.replace([])
    assert directory.subscription_ids() == []


def test_every_write_of_the_secret_mirrors_its_ids_and_never_a_key(state_tables: StateTables, secrets: Secrets) -> None:
    directory = SubscriptionDirectory(state_tables.client, state_tables.state)
    arn = secrets.put("signature-keys", json.dumps({"whsub_old": KEY}))
    secret = SignatureKeySecret(secrets.client, arn, directory)
    secret.mirror_ids()  # a stack whose keys predate the directory (tasksync webhook status does this)
    assert directory.subscription_ids() == ["whsub_old"]
    secret.add("whsub_new", "cd" * 32)
    assert directory.subscription_ids() == ["whsub_new", "whsub_old"]
    assert secret.remove("whsub_old")
    assert directory.subscription_ids() == ["whsub_new"]
    stored = state_tables.client.scan(TableName=state_tables.state)["Items"]
    assert KEY not in json.dumps(stored)
    assert "cd" * 32 not in json.dumps(stored)
