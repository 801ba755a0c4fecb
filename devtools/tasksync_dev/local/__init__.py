"""`make run`: the whole app on this machine, in the foreground (`python -m tasksync_dev.local`).

A development tool, never deployed (it is not in the Lambda layer). It needs the dev dependencies
(moto, PyYAML) and a checkout (template.yaml, functions/).
Start with `tasksync_dev.local.stack.LocalStack`; `.local/stack.json` tells other tools (the
`tasksync` CLI with --local, `python -m tasksync_dev.local.sample`) how to reach a running stack.
"""
