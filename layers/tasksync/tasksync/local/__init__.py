"""`make run`: the whole app on this machine, in the foreground (`python -m tasksync.local`).

A development tool. It ships in the layer with the rest of the package, but no handler imports
it, and it needs the dev dependencies (moto, PyYAML) and a checkout (template.yaml, functions/).
Start with `tasksync.local.stack.LocalStack`; `.local/stack.json` tells other tools (the
`tasksync` CLI with --local, `python -m tasksync.local.sample`) how to reach a running stack.
"""
