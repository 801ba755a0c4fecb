"""The IAM coverage check: what each function's code calls in the tests, against what template.yaml grants."""
