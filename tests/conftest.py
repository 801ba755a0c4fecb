"""Shared pytest fixtures. Each plugin module owns one kind of real dependency."""

import gc

import pytest

pytest_plugins = [
    "tests.support.dynamodb",
    "tests.support.aws",
    "tests.support.close_sandbox",
    "tests.support.chartmogul_sandbox",
    "tests.support.iam.recording",
]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep what imports and collection built (modules, test items) out of the garbage
    collector's full passes: it lives for the whole run, and the property tests allocate enough
    to trigger a dozen full passes, which would each walk all of it again (about half their
    cost, some 0.5 s of a unit run)."""
    gc.collect()
    gc.freeze()
