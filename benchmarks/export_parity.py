"""Export and parity of a registered full-data model, piece by piece.

    python benchmarks/export_parity.py --registry artifacts/registry --version 1 \
        --reviews artifacts/reviews/<hash>/reviews.parquet [--tflite-batch 64 256]

Exports the version into a temporary folder once per TFLite batch size and times each part
of the parity check on the whole test split: the SavedModel on raw texts, the tokeniser,
and the TFLite interpreters. Prints each figure beside the version's recorded parity time
and the 60 s goal for export and parity together.
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
from lstm_model.release import layout
from lstm_model.release.config import ExportConfig
from lstm_model.release.export import export_model, saved_model_predict, tflite_predict

GOAL_SECONDS = 60.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--reviews", type=Path, required=True, help="the ingested Parquet")
    p.add_argument("--tflite-batch", type=int, nargs="+", default=[64])
    p.add_argument("--saved-model-batch", type=int, nargs="+", default=[1024])
    args = p.parse_args()
    folder = args.registry / "versions" / str(args.version)
    manifest = json.loads((folder / "manifest.json").read_text())
    table = pq.read_table(args.reviews, columns=["split", "text"])
    texts = table.filter(pc.equal(table["split"], "test"))["text"].to_pylist()
    expected = np.load(folder / layout.EVALUATION_DIR / "test_probabilities.npy").ravel()
    recorded = manifest["parity"]["seconds"] + manifest["export"]["seconds"]
    print(f"recorded export + parity of version {args.version}: {recorded:.1f} s")
    tokeniser_dir = folder / layout.TOKENISER_DIR
    started = time.perf_counter()
    ids = Tokeniser.load(tokeniser_dir).encode(texts)
    print(f"tokenise {len(texts)} texts: {time.perf_counter() - started:.1f} s")
    for batch in args.tflite_batch:
        with tempfile.TemporaryDirectory() as out:
            config = ExportConfig(tflite_batch_size=batch)
            exported = export_model(folder / layout.MODEL, tokeniser_dir, Path(out), 1, config)
            print(f"export (tflite batch {batch}): {exported.seconds:.1f} s")
            for sm_batch in args.saved_model_batch:
                started = time.perf_counter()
                saved = saved_model_predict(exported.saved_model_dir, texts, batch=sm_batch)
                took = time.perf_counter() - started
                diff = np.max(np.abs(saved - expected))
                print(f"  SavedModel, batch {sm_batch}: {took:.1f} s, max diff {diff:.1e}")
            started = time.perf_counter()
            lite = tflite_predict(exported.tflite_path, ids)
            took = time.perf_counter() - started
            diff = np.max(np.abs(lite - expected))
            print(f"  TFLite, batch {batch}: {took:.1f} s, max diff {diff:.1e}")
    print(f"goal: export + parity <= {GOAL_SECONDS:.0f} s")


if __name__ == "__main__":
    main()
