"""Keras backends other than TensorFlow, as a GPU worker runs them: `lstm-pipeline doctor`,
the fallback when the deployment's backend is not installed, and a whole retrain on JAX
(installed for the CPU here) whose export runs in a TensorFlow child process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _cli(
    *args: str, home: Path, backend: str | None, api_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LSTM_PIPELINE"))}
    env.pop("KERAS_BACKEND", None)
    (home / "prefect").mkdir(exist_ok=True)
    env.update(PREFECT_HOME=str(home / "prefect"), PYTHONPATH=str(ROOT), COLUMNS="200")
    if api_url is not None:  # the flows report there, not to a temporary server of their own
        env["PREFECT_API_URL"] = api_url
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=home, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def test_doctor_says_plainly_where_training_runs(tmp_path: Path) -> None:
    plain = _cli("doctor", home=tmp_path, backend=None)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "backend:      tensorflow ($KERAS_BACKEND unset: the default)" in plain.stdout
    assert "LSTM kernel:  generic LSTM kernel on CPU (tensorflow)" in plain.stdout
    assert "training:     on the CPU: no GPU that this backend can use" in plain.stdout
    assert "keras 3.15.1" in plain.stdout and "problem:" not in plain.stdout
    assert "server:       none (PREFECT_API_URL unset)" in plain.stdout

    # the gpu deployment's backend on a worker without the GPU environment: a fallback
    torch = _cli("doctor", home=tmp_path, backend="torch")
    assert torch.returncode == 0, torch.stderr[-2000:]
    if importlib.util.find_spec("torch") is None:
        assert "KERAS_BACKEND=torch, but torch is not installed here" in torch.stderr
        assert "backend:      tensorflow ($KERAS_BACKEND=torch is not installed: fallback)" in (
            torch.stdout
        )
        assert "problem:      $KERAS_BACKEND=torch cannot load here; using tensorflow" in (
            torch.stdout
        )
    else:  # the GPU environment is installed here
        assert "backend:      torch ($KERAS_BACKEND=torch)" in torch.stdout


def test_a_retrain_on_jax_trains_there_and_exports_on_tensorflow(
    fixture_archive: Path, tmp_path: Path, prefect_harness: str
) -> None:
    tiny = ["--min-rows", "100", "--vocab-size", "3000", "--maxlen", "40", "--units", "8",
            "--embedding-dim", "8", "--epochs", "1", "--min-accuracy", "0",
            "--no-baseline", "--mobile-accuracy-tolerance", "0.05"]  # fmt: skip
    out = _cli(
        "retrain", "--source", str(fixture_archive), "--workspace", str(tmp_path / "ws"), *tiny,
        home=tmp_path, backend="jax", api_url=prefect_harness,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    outputs = json.loads(out.stdout[out.stdout.index("{") :])
    assert outputs["champion"] == outputs["model_version"] == 1
    assert "no GPU visible to Keras: training on the CPU (generic LSTM kernel on CPU (jax))" in (
        out.stderr
    )
    assert "Keras runs on jax here: exporting in a TensorFlow process" in out.stderr
    assert outputs["parity"].endswith("passed")  # the exports score as the JAX-trained model
    manifest = json.loads(
        (tmp_path / "ws" / "registry" / "versions" / "1" / "manifest.json").read_text()
    )
    assert manifest["training"]["backend"] == "jax"
    assert manifest["parity"]["mobile"]["passed"] is True  # written by the TensorFlow child
    assert manifest["parity"]["mobile"]["tolerance"] == 0.05
