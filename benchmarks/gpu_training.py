"""The default model's training on a GPU with a non-TensorFlow Keras backend.

    KERAS_BACKEND=jax python benchmarks/gpu_training.py --tokenised FOLDER [--preset default]

FOLDER is a published tokenised dataset (``tokenised.parquet`` + ``manifest.json``, as the
tokenise step writes it). Prints which LSTM kernel ran, the training time, and the test
accuracy (compare with the CPU figures in the README, "Figures"). The GPU machines have
no TensorFlow, so this needs only Keras, its JAX or PyTorch backend, and the data.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokenised", type=Path, required=True)
    p.add_argument("--preset", default="default")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-cudnn", action="store_true", help="force the generic LSTM kernel")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras

    from lstm_model.data.dataset import load_split, open_tokenised
    from lstm_model.evaluation.evaluate import compute_metrics
    from lstm_model.model.config import PRESETS
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model

    tokenised = open_tokenised(args.tokenised)
    tokeniser, model_config = PRESETS[args.preset]
    if args.no_cudnn:
        model_config = model_config.model_copy(update={"use_cudnn": False})
    if tokeniser != tokenised.config:
        raise SystemExit(f"{args.tokenised} was tokenised with {tokenised.config}, not {tokeniser}")
    train = TrainConfig(seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train_model(tokenised, model_config, train, Path(tmp) / "run", verbose=2)
        seconds = time.perf_counter() - started
        model = keras.saving.load_model(result.model_path, compile=False)
        x, y = load_split(tokenised, "test")
        accuracy = compute_metrics(y, model.predict(x, batch_size=1024, verbose=0).ravel()).accuracy
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "preset": args.preset,
                "lstm_kernel": result.lstm_kernel,
                "epochs": result.epochs_run,
                "train_seconds": round(seconds, 1),
                "samples_per_second": result.samples_per_second,
                "test_accuracy": round(accuracy, 4),
                "combiner": result.history.get("combiner"),
            }
        )
    )


if __name__ == "__main__":
    main()
