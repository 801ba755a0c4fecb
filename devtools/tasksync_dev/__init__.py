"""Dev tools for tasksync: the Close and ChartMogul simulators (`sandbox`), the local runner
(`local`, `make run`) and the operator CLI (`cli`, the `tasksync` command).

None of this ships in the Lambda layer, which holds only the `tasksync` runtime package.
"""
