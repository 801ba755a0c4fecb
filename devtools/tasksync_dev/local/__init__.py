"""`make run`: the whole app on this machine, in the foreground (`python -m tasksync_dev.local`).

A development tool. It ships in the layer with the rest of the package, but no handler imports
it, and it needs the dev dependencies (moto, PyYAML) and a checkout (template.yaml, functions/).
Start with `tasksync_dev.local.stack.LocalStack`; `.local/stack.json` tells other tools (the
`tasksync` CLI with --local, `python -m tasksync_dev.local.sample`) how to reach a running stack.
"""
