"""Shared pytest fixtures. Each plugin module owns one kind of real dependency."""

pytest_plugins = [
    "tests.support.dynamodb",
    "tests.support.aws",
    "tests.support.close_sandbox",
    "tests.support.chartmogul_sandbox",
    "tests.support.iam.recording",
]
