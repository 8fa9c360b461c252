"""Export a trained model: Keras, SavedModel (TF Serving layout, raw text in), TFLite,
and the small TFLite for MediaPipe (``mobile``).

Needs TensorFlow (the only step that does). The SavedModel carries the tokeniser as
TensorFlow ops that replay the same RE2 patterns and vocabulary as ``Tokeniser``; the
TFLite model takes token ids (built-in ops only, weights embedded), so its callers
tokenise with ``Tokeniser``. ``check_parity`` proves the three agree on raw text, and
that the mobile file keeps the Keras model's accuracy.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.data.tokeniser import (
    APOSTROPHE_PATTERN,
    BREAK_PATTERN,
    NON_WORD_PATTERN,
    OOV_ID,
    RESERVED,
    Tokeniser,
)
from lstm_model.errors import PipelineError
from lstm_model.release import layout
from lstm_model.release.config import ExportConfig
from lstm_model.release.litert import predict_rows
from lstm_model.release.mobile import MobileBuild, MobileParity, check_mobile
from lstm_model.release.unroll import lstm_steps, unrolled

log = logging.getLogger(__name__)

SIGNATURE = "serving_default"


class ExportResult(BaseModel):
    """Where each exported format lies."""

    model_config = ConfigDict(frozen=True)

    saved_model_dir: Path
    tflite_path: Path
    seconds: float
    mobile_path: Path | None = None


class ParityResult(BaseModel):
    """Largest probability differences of the exports against the Keras model, and the
    mobile file's accuracy against the Keras model's (``passed`` needs both)."""

    model_config = ConfigDict(frozen=True)

    n: int
    saved_model_max_abs_diff: float
    tflite_max_abs_diff: float
    tolerance: float
    passed: bool
    seconds: float
    mobile: MobileParity | None = None

    def describe(self) -> str:
        worst = max(self.saved_model_max_abs_diff, self.tflite_max_abs_diff)
        text = (
            f"parity on {self.n} texts: SavedModel max |diff| {self.saved_model_max_abs_diff:.2e}, "
            f"TFLite max |diff| {self.tflite_max_abs_diff:.2e}, tolerance {self.tolerance:.0e}: "
            + ("passed" if worst <= self.tolerance else "FAILED")
        )
        return text if self.mobile is None else f"{text}; {self.mobile.describe()}"


def export_model(
    model_path: Path, tokeniser_dir: Path, out_dir: Path, version: int, config: ExportConfig
) -> ExportResult:
    """Write ``out_dir/<model_name>/<version>/`` (SavedModel), ``out_dir/model.tflite`` and,
    with ``config.mobile``, ``out_dir/mobile.tflite`` (built in a child process meanwhile).

    Tracing the model into TensorFlow graphs needs Keras on its TensorFlow backend: a
    process that trained on another one (JAX or PyTorch on a GPU worker) exports in a
    child process that loads the saved ``.keras`` file on TensorFlow.
    """
    if _keras_backend() != "tensorflow":
        return _export_in_tensorflow(model_path, tokeniser_dir, out_dir, version, config)
    import tensorflow as tf

    from lstm_model.model.builders import load_model

    started = time.perf_counter()
    tokeniser = Tokeniser.load(tokeniser_dir)
    model = load_model(model_path)
    serving_dir = out_dir / config.model_name / str(version)
    if serving_dir.exists():
        shutil.rmtree(serving_dir)
    serving_dir.parent.mkdir(parents=True, exist_ok=True)
    mobile_path = out_dir / Path(layout.MOBILE_TFLITE).name
    mobile_path.unlink(missing_ok=True)
    steps = lstm_steps(model) or 0
    if config.mobile and steps > config.tflite_unroll_max_steps:
        raise PipelineError(
            f"the mobile TFLite unrolls the LSTM's {steps} steps, more than "
            f"tflite_unroll_max_steps {config.tflite_unroll_max_steps}: raise that limit "
            "(the conversion's time and memory grow with the steps) or export with --no-mobile"
        )
    mobile = MobileBuild(model_path, tokeniser_dir, mobile_path) if config.mobile else None
    tflite_path = out_dir / Path(layout.TFLITE).name
    try:
        module = _serving_module(model, tokeniser)
        signature = module.serve.get_concrete_function()
        tf.saved_model.save(module, str(serving_dir), signatures={SIGNATURE: signature})
        lite_model = unrolled(model, config.tflite_unroll_max_steps)
        lite = tflite_bytes(lite_model, config.tflite_batch_size, tokeniser.maxlen)
        tflite_path.write_bytes(lite)
    except BaseException:
        if mobile is not None:
            mobile.cancel()
        raise
    own = time.perf_counter() - started
    written = mobile.finish() if mobile is not None else None
    seconds = time.perf_counter() - started
    log.info(
        "exported SavedModel %s, TFLite %s%s in %.1f s",
        serving_dir,
        tflite_path,
        f" and {written.name} ({seconds - own:.1f} s of it waiting for that)" if written else "",
        seconds,
    )
    return ExportResult(
        saved_model_dir=serving_dir,
        tflite_path=tflite_path,
        seconds=seconds,
        mobile_path=written,
    )


def tflite_bytes(model: Any, batch: int, maxlen: int) -> bytes:
    """The TFLite flatbuffer of ``model`` over ``[batch, maxlen]`` token ids: built-in ops
    only, weights embedded."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    # A static input shape lets a recurrent loop lower to built-in ops; freezing the
    # variables first embeds the weights (the converter leaves reads inside a loop as
    # resource variables otherwise, which LiteRT cannot run).
    ids_spec = tf.TensorSpec([batch, maxlen], tf.int32, name="ids")
    predict = tf.function(lambda ids: model(ids, training=False), input_signature=[ids_spec])
    frozen = convert_variables_to_constants_v2(predict.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops
    return bytes(converter.convert())


def _keras_backend() -> str:
    import keras

    return str(keras.backend.backend())


def _export_in_tensorflow(
    model_path: Path, tokeniser_dir: Path, out_dir: Path, version: int, config: ExportConfig
) -> ExportResult:
    log.info("Keras runs on %s here: exporting in a TensorFlow process", _keras_backend())
    arguments = [str(model_path), str(tokeniser_dir), str(out_dir), str(version),
                 config.model_dump_json()]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "lstm_model.release.export", *arguments],
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise PipelineError(f"the export on TensorFlow failed:\n{done.stderr[-4000:]}")
    return ExportResult.model_validate_json(done.stdout.strip().splitlines()[-1])


def saved_model_predict(
    saved_model_dir: Path, texts: Sequence[str], batch: int = 1024
) -> np.ndarray:
    """Probabilities from the SavedModel's serving signature, raw text in."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(saved_model_dir)).signatures[SIGNATURE]
    out = [
        serve(text=tf.constant(list(texts[i : i + batch])))["probability"].numpy()
        for i in range(0, len(texts), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0, "float32")


def tflite_predict(tflite_path: Path, ids: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Probabilities from the TFLite model with the LiteRT interpreter alone
    (``litert.predict_rows``: built-in kernels, rows split over ``threads``)."""
    return predict_rows(tflite_path, ids, threads)


def check_parity(
    exported: ExportResult,
    tokeniser_dir: Path,
    texts: Sequence[str],
    keras_probabilities: np.ndarray,
    tolerance: float,
    labels: np.ndarray | None = None,
    accuracy_tolerance: float = 0.002,
) -> ParityResult:
    """Compare SavedModel (raw text) and TFLite (ids) probabilities with the Keras ones,
    and the mobile file's accuracy on ``labels`` with the Keras model's (when exported)."""
    if exported.mobile_path is not None and labels is None:
        raise ValueError("the mobile TFLite is checked by accuracy: pass the texts' labels")
    started = time.perf_counter()
    reference = np.asarray(keras_probabilities, dtype="float64").ravel()
    saved = saved_model_predict(exported.saved_model_dir, texts).astype("float64")
    tokeniser = Tokeniser.load(tokeniser_dir)
    ids = tokeniser.encode(list(texts))
    lite = tflite_predict(exported.tflite_path, ids).astype("float64")
    saved_diff = float(np.max(np.abs(saved - reference))) if len(texts) else 0.0
    lite_diff = float(np.max(np.abs(lite - reference))) if len(texts) else 0.0
    mobile = None
    if exported.mobile_path is not None and labels is not None:
        mobile = check_mobile(
            exported.mobile_path, tokeniser, list(texts), labels, reference, accuracy_tolerance,
            ids=ids,
        )  # fmt: skip
    result = ParityResult(
        n=len(texts),
        saved_model_max_abs_diff=saved_diff,
        tflite_max_abs_diff=lite_diff,
        tolerance=tolerance,
        passed=saved_diff <= tolerance
        and lite_diff <= tolerance
        and (mobile is None or mobile.passed),
        seconds=round(time.perf_counter() - started, 2),
        mobile=mobile,
    )
    log.info(result.describe())
    return result


def _tf_encode(texts, table, maxlen: int, padding: str, truncating: str):  # type: ignore[no-untyped-def]
    """The ``Tokeniser`` rules as TensorFlow ops (same patterns, same id layout)."""
    import tensorflow as tf

    x = tf.strings.lower(texts, encoding="utf-8")
    x = tf.strings.regex_replace(x, BREAK_PATTERN, " ")
    x = tf.strings.regex_replace(x, APOSTROPHE_PATTERN, "")
    x = tf.strings.regex_replace(x, NON_WORD_PATTERN, " ")
    tokens = tf.strings.split(x)  # on whitespace: no empty tokens
    ids = tf.ragged.map_flat_values(table.lookup, tokens)
    ids = ids[:, -maxlen:] if truncating == "pre" else ids[:, :maxlen]
    lengths = ids.row_lengths()
    rows = ids.value_rowids()
    within = tf.range(tf.size(ids.flat_values, out_type=tf.int64)) - tf.gather(
        ids.row_starts(), rows
    )
    offset = tf.cast(maxlen, tf.int64) - lengths if padding == "pre" else tf.zeros_like(lengths)
    columns = tf.gather(offset, rows) + within
    return tf.scatter_nd(
        tf.stack([rows, columns], axis=1),
        tf.cast(ids.flat_values, tf.int32),
        tf.stack([tf.size(texts, out_type=tf.int64), tf.cast(maxlen, tf.int64)]),
    )


def _serving_module(model, tokeniser: Tokeniser):  # type: ignore[no-untyped-def]
    import tensorflow as tf

    words = list(tokeniser.vocabulary[len(RESERVED) :])

    class ServingModule(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(words, tf.string),
                    tf.range(len(RESERVED), len(RESERVED) + len(words), dtype=tf.int64),
                ),
                default_value=tf.constant(OOV_ID, tf.int64),
            )

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):  # type: ignore[no-untyped-def]
            ids = _tf_encode(
                text,
                self.table,
                tokeniser.maxlen,
                tokeniser.config.padding,
                tokeniser.config.truncating,
            )
            probability = self.model(ids, training=False)
            return {"probability": tf.reshape(probability, [-1])}

    return ServingModule()


if __name__ == "__main__":  # the child process of _export_in_tensorflow
    _model, _tokeniser, _out, _version, _config = sys.argv[1:]
    _result = export_model(
        Path(_model), Path(_tokeniser), Path(_out), int(_version),
        ExportConfig.model_validate_json(_config),
    )  # fmt: skip
    sys.stdout.write(_result.model_dump_json() + "\n")  # the result, read by the parent
