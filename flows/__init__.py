"""Prefect flows: they sequence tasks and pass paths and hashes between them."""
