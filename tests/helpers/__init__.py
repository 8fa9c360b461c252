"""Fixtures' building blocks shared by test modules and benchmarks (never a test module)."""
