"""Imports flow one way: flows -> tasks -> lstm_model, data_contracts, and inside the
library down its layers of sub-packages. No prints in libraries, no HTTP or Dask settings
in the ML library, no test module importing another."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level modules it must never import
FORBIDDEN = {
    "lstm_model": {
        *("prefect", "tasks", "flows", "data_contracts", "deployments", "serving", "cli"),
        *("fastapi", "uvicorn", "starlette", "httpx", "dask", "distributed", "prefect_dask"),
    },
    "data_contracts": {"prefect", "tasks", "flows", "deployments", "serving"},
    "tasks": {"flows", "deployments", "serving"},
    "flows": {"deployments"},
    "deployments": {"flows", "tasks", "serving"},  # deployments name flows by entrypoint only
    # the service runs the exported model: no orchestration, no training-data contracts
    "serving": {"prefect", "tasks", "flows", "data_contracts", "deployments", "cli"},
    "cli": {"deployments"},
}

# The library's layers, lowest first: a sub-package imports only those below it, and the
# top modules (errors, artifacts, config, events) import no sub-package.
LAYERS = ("data", "model", "training", "evaluation", "release", "scoring")
TOP = ("errors", "artifacts", "config", "events")


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full dotted name."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules(path)}


def _sub_package(path: Path) -> str:
    part = path.relative_to(ROOT / "lstm_model").parts[0]
    return part.removesuffix(".py")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_flow_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & FORBIDDEN[package]
    }
    assert offenders == {}, f"{package} imports what it must not: {offenders}"


def test_the_library_imports_down_its_layers() -> None:
    offenders = []
    for path in (ROOT / "lstm_model").rglob("*.py"):
        here = _sub_package(path)
        allowed = set(TOP) | (set(LAYERS[: LAYERS.index(here)]) if here in LAYERS else set())
        for name in _modules(path):
            parts = name.split(".")
            outside = parts[0] == "lstm_model" and len(parts) > 1 and parts[1] != here
            if outside and parts[1] not in allowed and parts[1] != "__version__":
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_sequential_and_parallel_scoring_never_import_each_other() -> None:
    scoring = ROOT / "lstm_model" / "scoring"
    assert not any(
        m.startswith("lstm_model.scoring.parallel") for m in _modules(scoring / "sequential.py")
    )
    assert not any(
        m.startswith("lstm_model.scoring.sequential") for m in _modules(scoring / "parallel.py")
    )


def test_every_sub_package_says_what_it_owns_and_may_import() -> None:
    for layer in LAYERS:
        doc = ast.get_docstring(
            ast.parse((ROOT / "lstm_model" / layer / "__init__.py").read_text())
        )
        assert doc and "May import" in doc, layer


def test_the_library_holds_no_http_or_dask_settings() -> None:
    """Config models of the ML library: none has a field for a server or a cluster."""
    import importlib

    from lstm_model.config import FrozenConfig

    words = ("host", "port", "http", "api", "key", "dask", "concurrency", "timeout", "address")
    fields = []
    for layer in LAYERS:
        module = importlib.import_module(f"lstm_model.{layer}.config")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, FrozenConfig):
                fields += [f"{value.__name__}.{f}" for f in value.model_fields]
    found = [f for f in fields if set(f.split(".")[1].split("_")) & set(words)]
    assert fields and found == []


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / "tests").rglob("*.py")
        for name in _modules(path)
        if name.startswith("tests.") and not name.startswith("tests.helpers")
    ]
    assert offenders == []


CODE_FOLDERS = (
    *("lstm_model", "data_contracts", "tasks", "flows", "cli", "serving", "deployments"),
    *("benchmarks", "tests"),
)


def test_no_name_or_comment_points_at_the_tracker() -> None:
    """A reader of the code cannot see the tracker: names and comments say what, not where
    a request came from."""
    # spelt apart so that this test does not find itself; a word ("issuer" is not one),
    # wherever it is in a name
    word = re.compile(r"(?<![a-z])iss" + r"ues?(?![a-z])", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in CODE_FOLDERS
        for path in (ROOT / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if word.search(line)
    ]
    assert found == []


def test_flow_parameter_descriptions_survive_the_ui() -> None:
    """The Prefect UI renders descriptions as HTML: an angle bracket would eat words."""
    from prefect.utilities.callables import parameter_schema

    from flows.retrain import retrain
    from flows.score import score_inbox
    from flows.tune import tune_hyperparameters

    described = {
        f"{flow.name}.{name}": spec.get("description", "")
        for flow in (retrain, score_inbox, tune_hyperparameters)
        for name, spec in parameter_schema(flow.fn).model_dump()["properties"].items()
    }
    assert described and all(described.values()), described
    assert {k: v for k, v in described.items() if "<" in v or ">" in v} == {}


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
        "import sys, lstm_model.data.ingest, lstm_model.data.dataset, data_contracts, tasks.data, serving.app;"
        "print(sorted(m for m in ('great_expectations', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("module", "kept_out"),
    [
        # a retrain with nothing new never trains: Keras and TensorFlow load in `train`
        ("flows.retrain", {"keras", "tensorflow", "keras_tuner"}),
        # the console builds its options from config alone, then starts Prefect's server
        ("cli.main", {"keras", "tensorflow", "pandas", "great_expectations", "prefect"}),
    ],
)
def test_heavy_frameworks_load_only_where_they_are_used(module: str, kept_out: set[str]) -> None:
    code = f"import sys, {module}; print(sorted({{m.split('.')[0] for m in sys.modules}}))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert kept_out.isdisjoint(ast.literal_eval(done.stdout.strip().splitlines()[-1]))


def test_the_long_modules_exist_and_start_first() -> None:
    import tomllib

    from tests.helpers.schedule import LONG_MODULES, long_modules_first

    assert all((ROOT / module).is_file() for module in LONG_MODULES)
    nodeids = ["tests/code/test_alerts.py::a", "tests/system/test_stack.py::b",
               "tests/code/test_alerts.py::c", "tests/code/test_flow.py::d"]  # fmt: skip
    ranked = [n for _, n in sorted(zip(long_modules_first(nodeids), nodeids, strict=True),
                                   key=lambda pair: pair[0])]  # fmt: skip
    assert ranked == [nodeids[1], nodeids[3], nodeids[0], nodeids[2]]
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    assert "--no-loadscope-reorder" in options["ini_options"]["addopts"].split()
