"""A registered version's exported model, verified and loaded once, for repeated prediction.

Used by the real-time service: it never runs the training code, only the exports. The
files a predictor needs are copied out of the registry while they are hashed, and the copy
is loaded only if every hash matches the version's manifest (and the manifest's signature,
when a signing key is set), so what is loaded is exactly what was verified (a file changed
after the check cannot slip in). Before it answers anything, the loaded model must score
the canary texts as recorded at export (``lstm_model.release.canary``).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from lstm_model.data.tokeniser import Tokeniser
from lstm_model.errors import ArtifactError, PipelineError
from lstm_model.release import layout
from lstm_model.release.canary import ModelOutputError, verify_canary
from lstm_model.release.export import SIGNATURE
from lstm_model.release.litert import invoke_rows
from lstm_model.release.registry import Registry

log = logging.getLogger(__name__)

Backend = Literal["saved_model", "tflite"]


class Predictor(Protocol):
    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probability of the positive class, one per text (float32)."""
        ...


@dataclass(frozen=True)
class ExportedModel:
    """One version's exported model, loaded, with what the service reports about it."""

    version: int
    backend: Backend
    predictor: Predictor
    metrics: dict[str, Any]
    trained_at: str
    loaded_at: float = field(default_factory=time.time)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """One value per text, as the model gave it (``check_probabilities`` judges them);
        raises ModelOutputError when the count is wrong."""
        values = np.asarray(self.predictor.predict(texts)).ravel()
        if values.shape != (len(texts),):
            raise ModelOutputError(
                f"model version {self.version} gave {values.size} values for {len(texts)} texts"
            )
        return values


def load_exported(
    registry_root: Path, version: int, backend: Backend, threads: int = 2
) -> ExportedModel:
    """Verify a version's exported files against its manifest, then load them.

    ``threads``: how many predictions may run at once (TFLite keeps one interpreter each).
    Raises ArtifactError (tampered, missing or unlisted files, a bad signature),
    ModelOutputError (the canary texts score otherwise than recorded) or PipelineError (the
    version was never exported) naming the problem; nothing is loaded then.
    """
    registry = Registry(registry_root)
    manifest = registry.trusted_manifest(version)
    if not (manifest.get("parity") or {}).get("passed"):
        raise PipelineError(
            f"model version {version} has no export that passed its parity check: "
            "only exported, accepted versions can be served"
        )
    folder = registry.path(version)
    model_name = manifest["export"]["model_name"]
    # The SavedModel folder holds its tokeniser as ops; TFLite needs the tokeniser files.
    saved_model = layout.saved_model_dir(model_name, version)
    tree = f"{saved_model}/" if backend == "saved_model" else f"{layout.TOKENISER_DIR}/"
    names = [n for n in manifest["files"] if n.startswith(tree)]
    if not names:
        raise ArtifactError(f"model version {version}: its manifest lists nothing under {tree}")
    if backend == "tflite":
        names.append(layout.TFLITE)
    on_disk = {p.relative_to(folder).as_posix() for p in (folder / tree).rglob("*") if p.is_file()}
    unlisted = sorted(on_disk - set(manifest["files"]))
    if unlisted:
        raise ArtifactError(f"model version {version}: files not in the manifest: {unlisted}")
    with tempfile.TemporaryDirectory(prefix=f"lstm-serving-v{version}-") as scratch:
        copy = Path(scratch)
        for name in names:
            _copy_verified(folder, copy, name, manifest["files"].get(name), version)
        if backend == "saved_model":
            predictor: Predictor = SavedModelPredictor(copy / tree)
        else:
            predictor = TFLitePredictor(
                (copy / layout.TFLITE).read_bytes(),
                Tokeniser.load(copy / layout.TOKENISER_DIR),
                interpreters=threads,
            )
    # Also the warm-up: the first call traces the function.
    verify_canary(predictor.predict, manifest.get("canary"), backend, f"model version {version}")
    return ExportedModel(
        version=version,
        backend=backend,
        predictor=predictor,
        metrics=manifest.get("metrics") or {},
        trained_at=manifest["created_at"],
    )


def _copy_verified(folder: Path, copy: Path, name: str, expected: str | None, version: int) -> None:
    if expected is None:
        raise ArtifactError(f"model version {version}: {name} is not in the manifest")
    source = folder / name
    if not source.is_file():
        raise ArtifactError(f"model version {version}: {name} is missing")
    target = copy / name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            writer.write(chunk)
    if digest.hexdigest() != expected:
        raise ArtifactError(
            f"model version {version}: {name} has sha256 {digest.hexdigest()[:12]}…, the "
            f"manifest says {expected[:12]}…; refusing a tampered model"
        )


class SavedModelPredictor:
    """The SavedModel's serving signature: raw text in, the tokeniser runs as TF ops."""

    def __init__(self, saved_model_dir: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        # Loading reads the variables into memory, so the folder may go afterwards.
        self._serve = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        out = self._serve(text=self._tf.constant(list(texts), self._tf.string))
        return out["probability"].numpy().astype("float32", copy=False)


class TFLitePredictor:
    """``Tokeniser`` then the TFLite model, on a small pool of LiteRT interpreters.

    An interpreter is not safe to share between threads, so each prediction borrows one.
    Built-in kernels without XNNPACK, as in the export's parity check.
    """

    def __init__(self, model_bytes: bytes, tokeniser: Tokeniser, interpreters: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.tokeniser = tokeniser
        self._pool: queue.Queue[Any] = queue.Queue()
        for _ in range(interpreters):
            interpreter = Interpreter(
                model_content=model_bytes,
                experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                num_threads=1,
            )
            interpreter.allocate_tensors()
            self._pool.put(interpreter)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        ids = self.tokeniser.encode(list(texts))
        interpreter = self._pool.get()
        try:
            return invoke_rows(interpreter, ids)
        finally:
            self._pool.put(interpreter)
