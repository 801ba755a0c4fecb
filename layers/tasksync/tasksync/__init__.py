"""tasksync: keep ChartMogul tasks in step with Close CRM tasks.

Layers (cookbook style): ``models`` (pydantic shapes), ``logic`` (pure decisions and the sync
engine that drives them), ``dal`` (Close, ChartMogul, DynamoDB, SQS access), ``sandbox``
(HTTP simulators of Close and ChartMogul for tests, the local runner and benchmarks).
"""

__version__ = "0.1.0"
