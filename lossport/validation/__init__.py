"""Validation: backends, cases, comparison policy, suites and reports (``lossport validate``)."""
