"""The console command, run for real as a user runs it (no Prefect server configured)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_contracts.config import ReviewsContractConfig
from lstm_model.artifacts import sha256_file
from lstm_model.data.config import TokeniserConfig
from lstm_model.evaluation.config import GateConfig

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LSTM_PIPELINE"))}
    (home / "prefect").mkdir(exist_ok=True)
    env.update(PREFECT_HOME=str(home / "prefect"), COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=home,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    out = _cli("--help", home=tmp_path)
    assert out.returncode == 0
    assert "retrain" in out.stdout and "show-source" in out.stdout


def test_retrain_help_explains_every_option(tmp_path: Path) -> None:
    out = _cli("retrain", "--help", home=tmp_path)
    assert out.returncode == 0
    options = ["--source", "--workspace", "--registry", "--preset", "--units", "--l2"] + [
        "--" + name.replace("_", "-")
        for model in (TokeniserConfig, ReviewsContractConfig, GateConfig)
        for name in model.model_fields
        if name != "max_examples"
    ]
    for option in options:
        assert option in out.stdout, option
    assert "LSTM_PIPELINE_SOURCE" in out.stdout and "aclImdb_v1.tar.gz" in out.stdout


def test_retrain_runs_the_flow_locally(fixture_archive: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    tiny = ["--min-rows", "100", "--vocab-size", "3000", "--maxlen", "40", "--units", "8",
            "--embedding-dim", "8", "--epochs", "1", "--min-accuracy", "0",
            "--min-margin-over-baseline", "-1"]  # fmt: skip
    out = _cli(
        "retrain", "--source", str(fixture_archive), "--workspace", str(workspace), *tiny,
        home=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    outputs = json.loads(out.stdout[out.stdout.index("{") :])
    assert sha256_file(Path(outputs["tokenised_path"])) == outputs["tokenised_sha256"]
    assert outputs["champion"] == outputs["model_version"] == 1
    assert "Finished in state Completed()" in out.stderr
    assert "tokenise: 408 reviews" in out.stderr  # library logs reach the run log
    assert "LSTM kernel: generic LSTM kernel on CPU" in out.stderr

    listed = _cli("models", "list", "--workspace", str(workspace), home=tmp_path)
    assert listed.returncode == 0
    assert "     1*" in listed.stdout and "champion" in listed.stdout
    rollback = _cli("models", "rollback", "--workspace", str(workspace), home=tmp_path)
    assert rollback.returncode == 1
    assert "error: version 1 is the first champion: nothing to roll back to" in rollback.stderr


def test_contract_failure_exits_1_with_the_reason(fixture_archive: Path, tmp_path: Path) -> None:
    out = _cli(
        "retrain", "--source", str(fixture_archive), "--workspace", str(tmp_path), home=tmp_path
    )
    assert out.returncode == 1
    error = out.stderr[out.stderr.index("error: ") :]
    assert "expect_table_row_count_to_be_between(min_value=1000" in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["retrain", "--vocab-size", "2"], "vocab_size"),
        (["retrain", "--min-rows", "10", "--max-rows", "5"], "min_rows 10 > max_rows 5"),
        (["score", "--dask-workers", "-1"], "dask_workers"),
        (["score", "--dask-address", "10.0.0.5:8786"], "dask_address"),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, args: list[str], message: str) -> None:
    out = _cli(*args, home=tmp_path)
    assert out.returncode == 1
    assert "invalid option" in out.stderr and message in out.stderr


def test_bad_padding_choice_is_refused(tmp_path: Path) -> None:
    out = _cli("retrain", "--padding", "middle", home=tmp_path)
    assert out.returncode == 2 and "middle" in out.stderr


def test_show_source_explains_the_choice(fixture_archive: Path, tmp_path: Path) -> None:
    env_out = _cli("show-source", "--source", str(fixture_archive), home=tmp_path)
    assert json.loads(env_out.stdout)["origin"] == "argument"
    missing = _cli("show-source", "--source", "nowhere.tar.gz", home=tmp_path)
    assert missing.returncode == 1
    assert "error: data source not found: nowhere.tar.gz (given by --source)" in missing.stderr
