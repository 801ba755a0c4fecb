"""In-memory fakes of the engine's ports (`tasksync.logic.ports`): no DynamoDB, no HTTP.

Each fake keeps the contract its port documents, including the parts the engine's
correctness rests on: the link store's optimistic ``rev`` and claims, and ChartMogul's
faults (5xx before a write, a response lost after one, timeouts).
"""
