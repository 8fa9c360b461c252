"""The order in which the parallel suite hands modules to its workers."""

from __future__ import annotations

# The modules that take minutes, longest first (`--durations` of fresh-clone runs). xdist
# hands whole modules to the workers in collection order (`--no-loadscope-reorder`), so
# these start first and no worker is left running a long one alone at the end while the
# other idles: longest-processing-time-first scheduling.
LONG_MODULES = (
    "tests/system/test_stack.py",
    "tests/code/test_flow.py",
    "tests/system/test_postgres.py",
    "tests/code/test_cli.py",
    "tests/model/test_scoring_parallel.py",
    "tests/system/test_backends.py",
    "tests/model/test_training.py",
    "tests/model/test_tuning.py",
    "tests/model/test_registry_and_export.py",
    "tests/model/test_scoring_fuzz.py",
)


def long_modules_first(nodeids: list[str]) -> list[int]:
    """Each test's rank: its module's place in ``LONG_MODULES``, the rest after them."""
    rank = {module: i for i, module in enumerate(LONG_MODULES)}
    return [rank.get(nodeid.split("::")[0], len(rank)) for nodeid in nodeids]
