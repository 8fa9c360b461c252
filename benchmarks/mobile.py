"""The small TFLite of a registered full-data model: size, accuracy, MediaPipe agreement.

    python benchmarks/mobile.py --registry artifacts/registry --version 1 \
        --reviews artifacts/reviews/<hash>/reviews.parquet [--mediapipe-texts 2000] [--float16]

Builds the version's mobile file as the export does (int8 weights, unrolled LSTM,
MediaPipe metadata) in a temporary folder and prints, each beside its reference:
- its size beside the version's float TFLite (target: at most a third);
- its accuracy on the whole test split beside the Keras model's (target: within 0.2
  points), the label agreement and the per-text probability difference;
- MediaPipe Tasks' TextClassifier on raw test reviews (its own tokenisation) against the
  Keras model: label agreement and probability difference, overall and on the reviews that
  fit in ``maxlen`` tokens;
- with ``--float16``: the same model with float16 weights, the other quantisation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lstm_model.data.tokeniser import Tokeniser
from lstm_model.model.builders import load_model
from lstm_model.release import layout
from lstm_model.release.mobile import check_mobile, mobile_tflite_bytes, with_metadata


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--reviews", type=Path, required=True, help="the ingested Parquet")
    p.add_argument("--mediapipe-texts", type=int, default=2000)
    p.add_argument("--float16", action="store_true")
    args = p.parse_args()
    folder = args.registry / "versions" / str(args.version)
    table = pq.read_table(args.reviews, columns=["split", "text", "label"])
    test = table.filter(pc.equal(table["split"], "test"))
    texts, labels = test["text"].to_pylist(), test["label"].to_numpy()
    keras = np.load(folder / layout.EVALUATION_DIR / "test_probabilities.npy").ravel()
    tokeniser = Tokeniser.load(folder / layout.TOKENISER_DIR)
    model = load_model(folder / layout.MODEL)
    float_size = (folder / layout.TFLITE).stat().st_size
    with tempfile.TemporaryDirectory() as out:
        path = Path(out) / "mobile.tflite"
        started = time.perf_counter()
        bare = mobile_tflite_bytes(model, tokeniser)
        converted = time.perf_counter() - started
        path.write_bytes(with_metadata(bare, tokeniser))
        built = time.perf_counter() - started
        size = path.stat().st_size
        ratio = size / float_size
        print(f"mobile.tflite: {size / 1e6:.2f} MB ({len(bare) / 1e6:.2f} MB model, "
              f"{(size - len(bare)) / 1e6:.2f} MB metadata and vocabulary); float TFLite "
              f"{float_size / 1e6:.2f} MB: ratio {ratio:.3f} (target <= 0.333)")  # fmt: skip
        print(f"conversion {converted:.1f} s, with metadata {built:.1f} s")
        parity = check_mobile(path, tokeniser, texts, labels, keras, 0.002)
        print(f"whole test split ({parity.n}): accuracy mobile {parity.mobile_accuracy:.4f} vs "
              f"Keras {parity.keras_accuracy:.4f}, difference "
              f"{(parity.mobile_accuracy - parity.keras_accuracy) * 100:+.2f} points "
              f"(target within 0.20); labels agree {parity.label_agreement:.4f}; |diff| max "
              f"{parity.max_abs_diff:.2e}, mean {parity.mean_abs_diff:.2e}; "
              f"{parity.seconds:.1f} s")  # fmt: skip
        _mediapipe(path, tokeniser, texts, keras, args.mediapipe_texts)
        if args.float16:
            _float16(model, tokeniser, texts, labels, keras, Path(out), float_size)


def _mediapipe(
    path: Path, tokeniser: Tokeniser, texts: list[str], keras: np.ndarray, n: int
) -> None:
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import TextClassifier, TextClassifierOptions

    rows = np.random.default_rng(0).choice(len(texts), size=min(n, len(texts)), replace=False)
    chosen = [texts[i] for i in rows]
    options = TextClassifierOptions(base_options=BaseOptions(model_asset_path=str(path)))
    scores = []
    with TextClassifier.create_from_options(options) as classifier:
        started = time.perf_counter()
        for text in chosen:
            (head,) = classifier.classify(text).classifications
            scores.append({c.category_name: c.score for c in head.categories}["positive"])
        seconds = time.perf_counter() - started
    mediapipe, reference = np.array(scores), keras[rows]
    _, lengths = tokeniser.encode_with_lengths(chosen)
    fits = lengths <= tokeniser.maxlen
    for name, keep in (("all", np.ones(len(rows), bool)), (f"<= {tokeniser.maxlen} tokens", fits)):
        agree = np.mean((mediapipe[keep] >= 0.5) == (reference[keep] >= 0.5))
        diff = np.abs(mediapipe[keep] - reference[keep])
        print(f"MediaPipe TextClassifier on {keep.sum()} raw test reviews ({name}): labels agree "
              f"{agree:.4f} with Keras; |diff| median {np.median(diff):.2e}, p99 "
              f"{np.quantile(diff, 0.99):.2e}, max {diff.max():.2e}")  # fmt: skip
    print(f"MediaPipe: {seconds / len(rows) * 1000:.1f} ms per text, one thread")
    print(json.dumps({"mediapipe_ms_per_text": round(seconds / len(rows) * 1000, 2)}))


def _float16(model, tokeniser, texts, labels, keras, out: Path, float_size: int) -> None:  # type: ignore[no-untyped-def]
    """The other quantisation, measured the same way: float16 weights."""
    path = out / "mobile-float16.tflite"
    path.write_bytes(with_metadata(mobile_tflite_bytes(model, tokeniser, "float16"), tokeniser))
    parity = check_mobile(path, tokeniser, texts, labels, keras, 0.002)
    print(f"float16 instead: {path.stat().st_size / 1e6:.2f} MB, ratio "
          f"{path.stat().st_size / float_size:.3f}; accuracy {parity.mobile_accuracy:.4f} vs "
          f"Keras {parity.keras_accuracy:.4f}; |diff| max {parity.max_abs_diff:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
