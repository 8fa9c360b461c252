"""Imports flow one way: flows -> tasks -> lstm_model, data_contracts. No prints in libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level modules it must never import
FORBIDDEN = {
    "lstm_model": {"prefect", "tasks", "flows", "data_contracts", "deployments", "serving"},
    "data_contracts": {"prefect", "tasks", "flows", "deployments", "serving"},
    "tasks": {"flows", "deployments", "serving"},
    "flows": {"deployments"},
    "deployments": {"flows", "tasks", "serving"},  # deployments name flows by entrypoint only
    # the service runs the exported model: no orchestration, no training-data contracts
    "serving": {"prefect", "tasks", "flows", "data_contracts", "deployments"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}, f"{package} imports what it must not: {offenders}"


def test_the_rule_checker_catches_a_prefect_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom prefect import task\n")
    assert "prefect" in _imports(bad)


@pytest.mark.parametrize("package", ["lstm_model", "data_contracts", "tasks", "serving"])
def test_library_code_never_prints(package: str) -> None:
    prints = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in (ROOT / package).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print"
    ]
    assert prints == []


def test_importing_the_library_does_no_work(tmp_path: Path) -> None:
    """Importing the packages writes no files and starts no Prefect or GX machinery."""
    import subprocess
    import sys

    code = (
        "import sys, lstm_model.ingest, lstm_model.dataset, data_contracts, tasks.data, serving.app;"
        "print(sorted(m for m in ('great_expectations', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []
