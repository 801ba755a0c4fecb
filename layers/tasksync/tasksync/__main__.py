"""`python -m tasksync`: the operator CLI (same as the `tasksync` console script)."""

from tasksync.cli import main

raise SystemExit(main())
