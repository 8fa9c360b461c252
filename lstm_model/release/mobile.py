"""The small TFLite for phones and edge devices, ready for MediaPipe Tasks' TextClassifier.

``export/mobile.tflite`` holds the model with int8 weights (dynamic-range quantisation),
its LSTM unrolled (MediaPipe runs single-subgraph models only), two scores per text
(``LABELS`` order) and the TFLite metadata MediaPipe reads: a regex tokenizer, its
vocabulary and the label names. MediaPipe tokenises raw text itself, by conventions that
differ from ``Tokeniser``'s; the export bridges them where it can:

- MediaPipe splits on a delimiter pattern and looks tokens up as they are, without
  lower-casing or dropping apostrophes. The pattern drops ``<br />`` markup and the
  apostrophes at a word's edges; the vocabulary file lists every word lower-case and
  title-case, each also with the English clitics it can carry, with either apostrophe
  ("don't" and "don’t" for "dont", "can't" for "cant").
- MediaPipe puts the words first and the padding after them; ``Tokeniser`` pads in front.
  The model moves the padding to the front itself.
- MediaPipe keeps the first ``maxlen`` words of a longer text; ``Tokeniser`` the last.

What is left (words in capitals, apostrophes inside words other than clitics, texts over
``maxlen`` words) is measured, not assumed: MediaPipe's label agreement with the Keras model is in
docs/benchmarks.md. The pipeline's own check (``check_mobile``) scores the file with LiteRT
on ``Tokeniser``'s ids in MediaPipe's layout, so it measures the quantisation alone.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import temporary_sibling
from lstm_model.data.tokeniser import (
    BREAK_PATTERN,
    OOV_ID,
    PAD_ID,
    RESERVED,
    Tokeniser,
)
from lstm_model.errors import PipelineError
from lstm_model.model.labels import LABELS, THRESHOLD
from lstm_model.release.litert import predict_rows

log = logging.getLogger(__name__)

_WORD = r"\p{L}\p{M}\p{N}"
DELIMITER_PATTERN = rf"(?:^['’]+|{BREAK_PATTERN}|[^{_WORD}'’]['’]*|['’]+(?:[^{_WORD}'’]|$))+"
"""MediaPipe's split points (RE2, leftmost alternative first at every repetition): runs of
``<br />`` markup and of characters that are not letters, marks, digits or apostrophes,
with the apostrophes at a word's edges ('quoted', actors'; ``^`` is the start of what is
left to split). Apostrophes inside a word stay in the token: the vocabulary holds those
forms."""
MEDIAPIPE_PAD = "<PAD>"
MEDIAPIPE_UNKNOWN = "<UNKNOWN>"
CLITICS = (("nt", "n't"), ("s", "'s"), ("ll", "'ll"), ("re", "'re"), ("ve", "'ve"),
           ("d", "'d"), ("m", "'m"))  # fmt: skip
"""Word endings that ``Tokeniser`` made by dropping an apostrophe, and the written form."""
IRREGULAR = {"cant": "can't", "wont": "won't", "aint": "ain't", "shant": "shan't"}
"""Negations whose stem is no word of its own."""
CHECK_BATCH = 64
"""Rows per interpreter call in ``mobile_predict`` (the file's batch is 1 until resized)."""
_PARSER_VERSION = "1.2.1"
"""The metadata parser version that a regex tokenizer needs (MediaPipe's
metadata_version.cc): what MediaPipe's missing native helper would compute for our file."""


class MobileParity(BaseModel):
    """The mobile file against the Keras model on the test split, by accuracy."""

    model_config = ConfigDict(frozen=True)

    n: int
    keras_accuracy: float
    mobile_accuracy: float
    label_agreement: float
    max_abs_diff: float
    mean_abs_diff: float
    tolerance: float
    passed: bool
    size_bytes: int
    seconds: float

    def describe(self) -> str:
        return (
            f"mobile TFLite ({self.size_bytes / 1e6:.1f} MB) on {self.n} texts: accuracy "
            f"{self.mobile_accuracy:.4f} vs Keras {self.keras_accuracy:.4f} (tolerance "
            f"{self.tolerance:.4f}), labels agree on {self.label_agreement:.2%}, |diff| max "
            f"{self.max_abs_diff:.2e}, mean {self.mean_abs_diff:.2e}: "
            + ("passed" if self.passed else "FAILED")
        )


def mediapipe_vocabulary(tokeniser: Tokeniser) -> str:
    """The vocabulary file of MediaPipe's regex tokenizer: ``<token> <id>`` per line, every
    form of a word under that word's id."""
    words = tokeniser.vocabulary[len(RESERVED) :]
    ids = {word: i for i, word in enumerate(words, start=len(RESERVED))}
    entries = {MEDIAPIPE_PAD: PAD_ID, MEDIAPIPE_UNKNOWN: OOV_ID, **ids}
    for word, i in ids.items():
        forms = [word]
        if word in IRREGULAR:
            forms.append(IRREGULAR[word])
        for ending, written in CLITICS:
            stem = word[: -len(ending)]
            if word.endswith(ending) and stem in ids:
                forms.append(stem + written)
        forms += [form.replace("'", "’") for form in forms if "'" in form]
        for form in forms:
            entries.setdefault(form, i)
            entries.setdefault(form[:1].upper() + form[1:], i)
    return "".join(f"{token} {i}\n" for token, i in entries.items())


def mediapipe_rows(ids: np.ndarray, padding: str) -> np.ndarray:
    """``Tokeniser`` rows in MediaPipe's layout: the same ids, the words first."""
    if padding == "post":
        return ids
    width = ids.shape[1]
    pads = width - np.count_nonzero(ids != PAD_ID, axis=1)
    columns = (np.arange(width)[None, :] + pads[:, None]) % width
    return np.take_along_axis(ids, columns, axis=1)


def mobile_tflite_bytes(
    model: Any, tokeniser: Tokeniser, weights: Literal["int8", "float16"] = "int8"
) -> bytes:
    """The quantised, unrolled model over ids in MediaPipe's layout, without metadata: one
    input ``[batch, maxlen]`` (batch 1 unless resized), one output ``[batch, 2]``.

    ``int8`` (the export's choice, by measurement in docs/benchmarks.md) quantises the
    weights to int8 with float activations; ``float16`` halves them instead."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    from lstm_model.release.unroll import unrolled

    maxlen = tokeniser.maxlen
    lite = unrolled(model, max_steps=maxlen)  # always: a loop would be a second subgraph
    front = tokeniser.config.padding == "pre"
    spec = tf.TensorSpec([None, maxlen], tf.int32, name="ids")

    @tf.function(input_signature=[spec])
    def classify(ids):  # type: ignore[no-untyped-def]
        if front:
            words = tf.reduce_sum(tf.cast(ids != PAD_ID, tf.int32), axis=1, keepdims=True)
            columns = tf.math.floormod(tf.range(maxlen)[None, :] + words, maxlen)
            ids = tf.gather(ids, columns, batch_dims=1)
        positive = lite(ids, training=False)
        return tf.concat([1.0 - positive, positive], axis=1)

    frozen = convert_variables_to_constants_v2(classify.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # int8 weights, float activations
    if weights == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def with_metadata(model: bytes, tokeniser: Tokeniser) -> bytes:
    """``model`` with the metadata of MediaPipe's text classifier, written by MediaPipe's
    own writer: regex tokenizer, vocabulary and labels."""
    writers = _metadata_writers()
    with tempfile.TemporaryDirectory() as folder:
        vocabulary = Path(folder) / "vocab.txt"  # the name it gets inside the model file
        vocabulary.write_text(mediapipe_vocabulary(tokeniser), encoding="utf-8")
        writer = writers.text_classifier.MetadataWriter.create_for_regex_model(
            bytearray(model),
            writers.metadata_writer.RegexTokenizer(
                delim_regex_pattern=DELIMITER_PATTERN, vocab_file_path=str(vocabulary)
            ),
            writers.metadata_writer.Labels().add(list(LABELS)),
        )
        populated, _ = writer.populate()
        # Freed here, not at interpreter exit: something in MediaPipe keeps this frame
        # alive, and the writer's __del__ fails once the os module is torn down.
        del writer
    return bytes(populated)


def write_mobile(model_path: Path, tokeniser_dir: Path, out_path: Path) -> None:
    """Build the mobile file of a saved model and write it to ``out_path``."""
    from lstm_model.model.builders import load_model

    tokeniser = Tokeniser.load(tokeniser_dir)
    model = mobile_tflite_bytes(load_model(model_path), tokeniser)
    out_path.write_bytes(with_metadata(model, tokeniser))


class MobileBuild:
    """``write_mobile`` in a child process on TensorFlow, on the CPU. Each TFLite conversion
    runs on one core, so the export converts the float file meanwhile.

    The child writes a temporary file, which ``finish`` renames into place once the child
    succeeded: a child left running by a killed parent never writes the final name.
    """

    def __init__(self, model_path: Path, tokeniser_dir: Path, out_path: Path) -> None:
        self.out_path = out_path
        self._partial = temporary_sibling(out_path)
        # A file, not a pipe (a full pipe would stall the child); closed by finish/cancel.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        self._child = subprocess.Popen(
            [sys.executable, "-m", "lstm_model.release.mobile",
             str(model_path), str(tokeniser_dir), str(self._partial)],
            env={**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""},
            stdout=subprocess.DEVNULL, stderr=self._errors,
        )  # fmt: skip

    def finish(self) -> Path:
        """Wait for the child; the file in place, or PipelineError with its last words."""
        try:
            returncode = self._child.wait()
            if returncode != 0 or not self._partial.is_file():
                self._errors.seek(0)
                errors = self._errors.read().decode(errors="replace")
                raise PipelineError(f"the mobile TFLite export failed:\n{errors[-4000:]}")
            os.replace(self._partial, self.out_path)
        finally:
            self._errors.close()
            self._partial.unlink(missing_ok=True)
        return self.out_path

    def cancel(self) -> None:
        """Stop the child and remove what it wrote."""
        self._child.kill()
        self._child.wait()
        self._errors.close()
        self._partial.unlink(missing_ok=True)


def mobile_predict(path: Path, rows: np.ndarray, threads: int | None = None) -> np.ndarray:
    """P(positive) from the mobile file on ids in MediaPipe's layout, resized to
    ``CHECK_BATCH`` rows a call (``litert.predict_rows``, as the float file)."""
    return predict_rows(path, rows, threads, batch=CHECK_BATCH)


def check_mobile(
    path: Path,
    tokeniser: Tokeniser,
    texts: list[str],
    labels: np.ndarray,
    keras_probabilities: np.ndarray,
    tolerance: float,
    ids: np.ndarray | None = None,
) -> MobileParity:
    """Accuracy of the mobile file against the Keras model's on the same texts: it passes
    when the two models get at most ``tolerance`` x n texts more or fewer right. ``ids``:
    the texts already encoded by ``tokeniser``, when the caller has them."""
    if not len(texts) == len(labels) == len(np.ravel(keras_probabilities)):
        raise ValueError(
            f"{len(texts)} texts, {len(labels)} labels and "
            f"{len(np.ravel(keras_probabilities))} Keras probabilities: one of each per text"
        )
    if ids is not None and (np.ndim(ids) != 2 or len(ids) != len(texts)
                            or np.shape(ids)[1] != tokeniser.maxlen):  # fmt: skip
        raise ValueError(
            f"ids of shape {np.shape(ids)} for {len(texts)} texts: one row of "
            f"{tokeniser.maxlen} ids per text"
        )
    started = time.perf_counter()
    encoded = tokeniser.encode(texts) if ids is None else ids
    rows = mediapipe_rows(encoded, tokeniser.config.padding)
    mobile = mobile_predict(path, rows).astype("float64")
    keras = np.asarray(keras_probabilities, dtype="float64").ravel()
    truth = np.asarray(labels).ravel().astype(bool)
    mobile_labels, keras_labels = mobile >= THRESHOLD, keras >= THRESHOLD
    n = len(texts)
    keras_accuracy = float(np.mean(keras_labels == truth)) if n else 0.0
    mobile_accuracy = float(np.mean(mobile_labels == truth)) if n else 0.0
    diff = np.abs(mobile - keras)
    result = MobileParity(
        n=n,
        keras_accuracy=keras_accuracy,
        mobile_accuracy=mobile_accuracy,
        label_agreement=float(np.mean(mobile_labels == keras_labels)) if n else 1.0,
        max_abs_diff=float(diff.max()) if n else 0.0,
        mean_abs_diff=float(diff.mean()) if n else 0.0,
        tolerance=tolerance,
        # in whole texts: 0.002 of 25,000 allows 50, without float rounding at the edge
        passed=abs(int(np.sum(mobile_labels == truth)) - int(np.sum(keras_labels == truth)))
        <= math.floor(tolerance * n + 1e-9),
        size_bytes=path.stat().st_size,
        seconds=round(time.perf_counter() - started, 2),
    )
    log.info(result.describe())
    return result


def _metadata_writers() -> types.SimpleNamespace:
    """MediaPipe's metadata writers. MediaPipe 1.2 ships them without the native module
    that computes the metadata's minimum parser version, so importing them fails; this
    provides that one function, with the version our metadata needs (a regex tokenizer
    needs 1.2.1 and nothing we write needs more). Everything else is MediaPipe's code."""
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as missing:
        if not (missing.name or "").startswith("mediapipe.tasks.cc"):
            raise
        log.debug("MediaPipe lacks %s: providing its one function", name)
        parts = name.split(".")
        for end in range(3, len(parts) + 1):
            sys.modules.setdefault(".".join(parts[:end]), types.ModuleType(".".join(parts[:end])))
        module = sys.modules[name]
        module.GetMinimumMetadataParserVersion = lambda _buffer: _PARSER_VERSION  # type: ignore[attr-defined]
        setattr(sys.modules[".".join(parts[:-1])], parts[-1], module)
    from mediapipe.tasks.python.metadata.metadata_writers import (
        metadata_writer,
        text_classifier,
    )

    return types.SimpleNamespace(metadata_writer=metadata_writer, text_classifier=text_classifier)


if __name__ == "__main__":  # the child process of MobileBuild
    write_mobile(*(Path(argument) for argument in sys.argv[1:4]))
