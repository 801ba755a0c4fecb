"""A session's DynamoDB Local or moto server: started once, failed clearly, always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasksync_dev.local.child_process import ChildServer, ChildServerError


def serving(server: ChildServer) -> Iterator[str]:
    """Yield the server's endpoint while it runs; a server that cannot start fails the test run."""
    try:
        endpoint = server.start()
    except ChildServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield endpoint
    finally:
        server.stop()
