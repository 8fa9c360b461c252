"""Which Keras backend trains, on which device, and what a worker's stack is.

``KERAS_BACKEND`` picks the backend (TensorFlow when unset). A GPU worker sets it to the
GPU group's backend; a process whose environment lacks that backend's package (a CPU worker
that runs a GPU deployment) falls back to TensorFlow with a warning rather than failing at
the Keras import (``settle_backend``). ``diagnose`` is what ``lstm-pipeline doctor`` prints:
the backend, the devices it sees, the LSTM kernel that would run, the stack's versions, and
what is wrong (a GPU the backend cannot use, say, because its CUDA libraries do not match).

Nothing here imports Keras or a backend until asked.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

BACKEND_ENV = "KERAS_BACKEND"
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
"""Keras backend -> the module it needs."""
STACK = ("keras", "tensorflow-cpu", "tensorflow", "jax", "jaxlib", "jax-cuda12-plugin",
         "torch", "prefect", "numpy", "great-expectations")  # fmt: skip


class Diagnosis(BaseModel):
    """What ``lstm-pipeline doctor`` found."""

    model_config = ConfigDict(frozen=True)

    backend: str
    chosen_by: str
    devices: list[str]
    gpus_present: list[str]
    """GPUs the driver lists (``nvidia-smi -L``), whether or not the backend can use them."""
    gpu: bool
    lstm_kernel: str
    versions: dict[str, str]
    problems: list[str]

    def render(self) -> str:
        """The report, one fact a line."""
        lines = [
            f"backend:      {self.backend} ({self.chosen_by})",
            f"devices:      {', '.join(self.devices) or 'none'}",
            f"GPUs present: {', '.join(self.gpus_present) or 'none that nvidia-smi lists'}",
            f"LSTM kernel:  {self.lstm_kernel}",
            "training:     "
            + ("on the GPU" if self.gpu else "on the CPU: no GPU that this backend can use"),
            "versions:     "
            + ", ".join(f"{name} {version}" for name, version in self.versions.items()),
        ]
        lines += [f"problem:      {problem}" for problem in self.problems]
        return "\n".join(lines)


def settle_backend() -> str:
    """The backend Keras will load: ``$KERAS_BACKEND`` when its package is installed, else
    TensorFlow, with a warning saying why (call before Keras is imported)."""
    wanted = os.environ.get(BACKEND_ENV, "tensorflow").strip() or "tensorflow"
    if "keras" in sys.modules:
        import keras

        return str(keras.backend.backend())
    module = PACKAGES.get(wanted)
    if module is not None and importlib.util.find_spec(module) is not None:
        return wanted
    log.warning(
        "%s=%s, but %s: training falls back to TensorFlow on the CPU. Install the GPU "
        "environment (make gpu-worker) on GPU workers.",
        BACKEND_ENV, wanted,
        f"{module} is not installed here" if module else "Keras has no such backend",
    )  # fmt: skip
    os.environ[BACKEND_ENV] = "tensorflow"
    return "tensorflow"


def diagnose() -> Diagnosis:
    """The backend, its devices, the LSTM kernel of the default model, versions, problems."""
    wanted = os.environ.get(BACKEND_ENV)
    backend = settle_backend()
    chosen_by = (
        f"${BACKEND_ENV}={wanted}"
        if wanted and wanted == backend
        else f"${BACKEND_ENV}={wanted} is not installed: fallback"
        if wanted
        else f"${BACKEND_ENV} unset: the default"
    )
    from lstm_model.model.builders import gpu_visible, lstm_kernel
    from lstm_model.model.config import ModelConfig

    devices, detail = _devices(backend)
    gpu = gpu_visible()
    present = _gpus_present()
    problems = []
    if present and not gpu:
        problems.append(
            f"{len(present)} GPU(s) present, but the {backend} backend sees none"
            + (f" ({detail})" if detail else "")
            + ": its CUDA libraries are missing or do not match the driver. Training will "
            "fall back to the CPU; install the GPU environment with make gpu-worker."
        )
    if wanted and wanted != backend:
        problems.append(f"${BACKEND_ENV}={wanted} cannot load here; using {backend}")
    return Diagnosis(
        backend=backend, chosen_by=chosen_by, devices=devices, gpus_present=present, gpu=gpu,
        lstm_kernel=lstm_kernel(ModelConfig()), versions=_versions(), problems=problems,
    )  # fmt: skip


def _devices(backend: str) -> tuple[list[str], str | None]:
    """The devices the backend sees, and why it sees no GPU when it says."""
    try:
        if backend == "jax":
            import jax

            try:
                jax.devices("gpu")
                detail = None
            except RuntimeError as error:
                detail = str(error).splitlines()[0]
            return [str(d) for d in jax.devices()], detail
        if backend == "torch":
            import torch

            gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return ["cpu", *gpus], None
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices()], None
    except Exception as error:  # a broken install is a finding, not a crash
        return [], f"{type(error).__name__}: {error}"


def _gpus_present() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(" (UUID")[0] for line in listed.stdout.splitlines() if line.strip()]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in STACK:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
