"""Export and parity of a registered full-data model, piece by piece.

    python benchmarks/export_parity.py --registry artifacts/registry --version 1 \
        --reviews artifacts/reviews/<hash>/reviews.parquet [--tflite-batch 64 256]

Exports the version into a temporary folder once per TFLite batch size, runs the parity
check as the pipeline does (``check_parity``), then times each of its parts alone on the
whole test split: the SavedModel on raw texts, the tokeniser, and the TFLite interpreters.
The references, in the same run: those parts' sum, and the TFLite of the same model with
its LSTM left as a loop (as Keras 3 converts it), converted and timed the same way.
Prints each figure beside it, the version's recorded time and the 60 s goal.
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
from lstm_model.release.config import ExportConfig
from lstm_model.release.export import (
    check_parity,
    export_model,
    saved_model_predict,
    tflite_bytes,
    tflite_predict,
    unrolled,
)
from lstm_model.release.mobile import check_mobile

GOAL_SECONDS = 60.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--reviews", type=Path, required=True, help="the ingested Parquet")
    p.add_argument("--tflite-batch", type=int, nargs="+", default=[64])
    p.add_argument("--saved-model-batch", type=int, nargs="+", default=[1024])
    p.add_argument("--no-mobile", action="store_true", help="export without the mobile file")
    p.add_argument("--no-reference", action="store_true", help="skip the looped-LSTM reference")
    args = p.parse_args()
    folder = args.registry / "versions" / str(args.version)
    manifest = json.loads((folder / "manifest.json").read_text())
    table = pq.read_table(args.reviews, columns=["split", "text", "label"])
    texts = table.filter(pc.equal(table["split"], "test"))["text"].to_pylist()
    expected = np.load(folder / layout.EVALUATION_DIR / "test_probabilities.npy").ravel()
    recorded = manifest["parity"]["seconds"] + manifest["export"]["seconds"]
    print(f"recorded export + parity of version {args.version}: {recorded:.1f} s")
    tokeniser_dir = folder / layout.TOKENISER_DIR
    started = time.perf_counter()
    ids = Tokeniser.load(tokeniser_dir).encode(texts)
    tokenise = time.perf_counter() - started
    print(f"tokenise {len(texts)} texts: {tokenise:.1f} s")
    for batch in args.tflite_batch:
        with tempfile.TemporaryDirectory() as out:
            config = ExportConfig(tflite_batch_size=batch, mobile=not args.no_mobile)
            exported = export_model(folder / layout.MODEL, tokeniser_dir, Path(out), 1, config)
            print(f"export (tflite batch {batch}): {exported.seconds:.1f} s")
            labels = table.filter(pc.equal(table["split"], "test"))["label"].to_numpy()
            # TensorFlow's first load of a SavedModel is slower than the next ones: load it
            # once before both timings, so that neither gets the cold start.
            started = time.perf_counter()
            saved_model_predict(exported.saved_model_dir, texts[:256])
            print(f"  SavedModel warm-up, 256 texts: {time.perf_counter() - started:.1f} s")
            # The parity check as the pipeline runs it; its pieces below are the reference.
            parity = check_parity(
                exported, tokeniser_dir, texts, expected, config.parity_tolerance,
                labels=labels if exported.mobile_path is not None else None,
                accuracy_tolerance=config.mobile_accuracy_tolerance,
            )  # fmt: skip
            print(f"  parity as the pipeline checks it: {parity.seconds:.1f} s "
                  f"({'passed' if parity.passed else 'FAILED'})")  # fmt: skip
            saved_seconds = []
            for sm_batch in args.saved_model_batch:
                started = time.perf_counter()
                saved = saved_model_predict(exported.saved_model_dir, texts, batch=sm_batch)
                took = time.perf_counter() - started
                saved_seconds.append(took)
                diff = np.max(np.abs(saved - expected))
                print(f"  SavedModel, batch {sm_batch}: {took:.1f} s, max diff {diff:.1e}")
            started = time.perf_counter()
            lite = tflite_predict(exported.tflite_path, ids)
            took = time.perf_counter() - started
            diff = np.max(np.abs(lite - expected))
            print(f"  TFLite, batch {batch}: {took:.1f} s, max diff {diff:.1e}")
            size = exported.tflite_path.stat().st_size / 1e6
            print(f"  TFLite file: {size:.1f} MB")
            mobile_seconds = 0.0
            if exported.mobile_path is not None:
                started = time.perf_counter()
                mobile = check_mobile(
                    exported.mobile_path, Tokeniser.load(tokeniser_dir), texts, labels, expected,
                    config.mobile_accuracy_tolerance, ids=ids,
                )  # fmt: skip
                mobile_seconds = time.perf_counter() - started
                print(f"  mobile TFLite (built beside the export), accuracy check: "
                      f"{mobile_seconds:.1f} s; {mobile.describe()}")  # fmt: skip
            total = exported.seconds + tokenise + saved_seconds[0] + took + mobile_seconds
            print(f"export + parity, every format: {exported.seconds + parity.seconds:.1f} s; "
                  f"with the parity's pieces timed alone: {total:.1f} s "
                  f"(ratio {(exported.seconds + parity.seconds) / total:.2f})")  # fmt: skip
            if args.no_reference:
                continue
            # The reference: the same model's TFLite with its LSTM a loop, as Keras 3
            # converts it, through the same conversion.
            model = load_model(folder / layout.MODEL)
            started = time.perf_counter()
            tflite_bytes(unrolled(model, config.tflite_unroll_max_steps), batch, ids.shape[1])
            convert_unrolled = time.perf_counter() - started
            print(f"  of the export, the unrolled TFLite conversion: {convert_unrolled:.1f} s")
            looped = Path(out) / "loop.tflite"
            started = time.perf_counter()
            looped.write_bytes(tflite_bytes(model, batch, ids.shape[1]))
            took_convert = time.perf_counter() - started
            print(f"  reference, LSTM as a loop: TFLite converted in {took_convert:.1f} s, "
                  f"{looped.stat().st_size / 1e6:.1f} MB")  # fmt: skip
            started = time.perf_counter()
            lite = tflite_predict(looped, ids)
            took_loop = time.perf_counter() - started
            diff = np.max(np.abs(lite - expected))
            print(f"  reference TFLite, batch {batch}: {took_loop:.1f} s, max diff {diff:.1e}")
            print(f"  TFLite scoring, unrolled against loop: {took_loop / took:.1f}x faster")
            now = total - mobile_seconds  # the float formats alone, as in the reference
            before = now - convert_unrolled + took_convert - took + took_loop
            print(f"export + parity: {now:.1f} s, against {before:.1f} s with the loop "
                  f"({now / before:.2f})")  # fmt: skip
    print(f"goal: export + parity <= {GOAL_SECONDS:.0f} s")


if __name__ == "__main__":
    main()
