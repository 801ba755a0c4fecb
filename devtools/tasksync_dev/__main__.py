"""`python -m tasksync_dev`: the operator CLI (same as the `tasksync` console script)."""

from tasksync_dev.cli import main

raise SystemExit(main())
