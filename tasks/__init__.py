"""Prefect tasks: thin wrappers, one library call each, with retries, caching, timeouts."""
