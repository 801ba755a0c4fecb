"""`make bench`: performance measurements that write docs/performance.md (not part of `make test`)."""
