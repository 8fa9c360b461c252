"""The tuning search on the full data, on a GPU with a non-TensorFlow Keras backend.

    KERAS_BACKEND=torch python benchmarks/gpu_tuning.py --tokenised FOLDER \\
        [--algorithm random] [--max-trials 12] [--epochs 3] [--evaluate-best]

FOLDER is a published tokenised dataset at least as wide as the search space (the default
tokenisation, 50,000 words x 1,000 tokens, is). Runs ``lstm_model.training.tuning.run_search``
exactly as the tuning flow does (trials see the validation share only), prints the trial
table, and with ``--evaluate-best`` trains the best configuration once on the whole
training share and reports its test accuracy, the one number here that reads the test split.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenised", type=Path, required=True)
    p.add_argument("--algorithm", choices=["random", "hyperband"], default="random")
    p.add_argument("--max-trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--evaluate-best", action="store_true")
    p.add_argument("--workspace", type=Path, help="keep the search here (default: a temp folder)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras

    from lstm_model.data.dataset import load_split, open_tokenised
    from lstm_model.evaluation.evaluate import compute_metrics
    from lstm_model.training.config import SearchSpace, TrainConfig, TuningConfig
    from lstm_model.training.fit import train_model
    from lstm_model.training.tuning import cut, run_search

    tokenised = open_tokenised(args.tokenised)
    config = TuningConfig(algorithm=args.algorithm, max_trials=args.max_trials, epochs=args.epochs)
    training = TrainConfig()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = run_search(tokenised, SearchSpace(), config, training, args.workspace or Path(tmp))
        seconds = time.perf_counter() - started
        print(f"\n{config.algorithm} search, {len(result.trials)} trials in {seconds:.0f} s "
              f"on {keras.backend.backend()} ({result.train_rows} fit / "
              f"{result.validation_rows} validation rows)")  # fmt: skip
        columns = ["trial", "val_accuracy", "epochs", "family", "pooling", "units",
                   "embedding_dim", "dropout", "vocab_size", "maxlen"]  # fmt: skip
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in result.trials:
            print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
        if args.evaluate_best:
            best = result.best
            # Train on the widest rows cut to the best sizes, as a retrain would tokenise.
            narrowed = _narrowed(tokenised, best.tokeniser, Path(tmp), cut, load_split)
            started = time.perf_counter()
            trained = train_model(
                narrowed, best.model, best.training, Path(tmp) / "best", verbose=2
            )
            train_seconds = time.perf_counter() - started
            model = keras.saving.load_model(trained.model_path, compile=False)
            x, y = load_split(narrowed, "test")
            probabilities = model.predict(x, batch_size=1024, verbose=0).ravel()
            accuracy = compute_metrics(y, probabilities).accuracy
            print(f"best configuration: {best.tokeniser.model_dump()} {best.model.model_dump()}")
            print(f"  trained in {train_seconds:.0f} s ({trained.epochs_run} epochs, best "
                  f"{trained.best_epoch}); test accuracy {accuracy:.4f}")  # fmt: skip


def _narrowed(tokenised, tokeniser, tmp: Path, cut, load_split):  # type: ignore[no-untyped-def]
    """A tokenised dataset with the best sizes, cut from the widest (no re-tokenising)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lstm_model.artifacts import sha256_file

    table = pq.read_table(tokenised.path)
    ids = table["ids"].combine_chunks().values.to_numpy().reshape(len(table), -1)
    rows = cut(ids, tokeniser.vocab_size, tokeniser.maxlen)
    flat = pa.array(rows.ravel())
    column = pa.FixedSizeListArray.from_arrays(flat, tokeniser.maxlen)
    narrowed = table.set_column(table.schema.get_field_index("ids"), "ids", column)
    path = tmp / "narrowed.parquet"
    pq.write_table(narrowed, path)
    return tokenised.model_copy(
        update={"path": path, "sha256": sha256_file(path), "config": tokeniser}
    )


if __name__ == "__main__":
    main()
