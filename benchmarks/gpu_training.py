"""The default model's training on a GPU with a non-TensorFlow Keras backend.

    KERAS_BACKEND=jax python benchmarks/gpu_training.py --tokenised FOLDER [--preset default]
        [--seeds 42 7 123] [--model lstm_region_buckets=65536] [--train lstm_residual_folds=5]

FOLDER is a published tokenised dataset (``tokenised.parquet`` + ``manifest.json``, as the
tokenise step writes it). Prints, per seed, one JSON line: which LSTM kernel ran, the
training time, the test accuracy and the branch ablation (compare with the CPU figures in
``docs/model.md``). The GPU machines have no TensorFlow, so this needs only Keras, its JAX
or PyTorch backend, and the data.
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
    p.add_argument("--seeds", type=int, nargs="+", default=[42])
    p.add_argument("--model", nargs="*", default=[], metavar="FIELD=JSON",
                   help="ModelConfig fields to change from the preset's")  # fmt: skip
    p.add_argument("--train", nargs="*", default=[], metavar="FIELD=JSON",
                   help="TrainConfig fields to change from the defaults")  # fmt: skip
    p.add_argument("--no-cudnn", action="store_true", help="force the generic LSTM kernel")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    import keras

    from lstm_model.data.dataset import load_split, open_tokenised
    from lstm_model.evaluation.ablation import branch_ablation, predict_branches
    from lstm_model.model.config import PRESETS, ModelConfig
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model

    tokenised = open_tokenised(args.tokenised)
    tokeniser, model_config = PRESETS[args.preset]
    changes = _fields(args.model) | ({"use_cudnn": False} if args.no_cudnn else {})
    model_config = ModelConfig.model_validate(model_config.model_dump() | changes)
    if tokeniser != tokenised.config:
        raise SystemExit(f"{args.tokenised} was tokenised with {tokenised.config}, not {tokeniser}")
    x, y = load_split(tokenised, "test")
    for seed in args.seeds:
        train = TrainConfig.model_validate({**_fields(args.train), "seed": seed})
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = train_model(tokenised, model_config, train, Path(tmp) / "run", verbose=2)
            seconds = time.perf_counter() - started
            model = keras.saving.load_model(result.model_path, compile=False)
            probabilities, logits = predict_branches(model, x)
        ablation = branch_ablation(model, probabilities, logits, y)
        print(
            json.dumps(
                {
                    "backend": keras.backend.backend(),
                    "preset": args.preset,
                    "seed": seed,
                    "model": args.model,
                    "train": args.train,
                    "lstm_kernel": result.lstm_kernel,
                    "epochs": result.epochs_run,
                    "train_seconds": round(seconds, 1),
                    "samples_per_second": result.samples_per_second,
                    "test_accuracy": round(
                        ablation[0].accuracy
                        if ablation
                        else float(((probabilities >= 0.5) == (y == 1)).mean()),
                        4,
                    ),
                    "ablation": {r.variant: round(r.change * 100, 2) for r in ablation[1:]},
                    "combiner": result.history.get("combiner"),
                }
            ),
            flush=True,
        )


def _fields(pairs: list[str]) -> dict[str, object]:
    """``["units=64", "pooling=\"max\""]`` -> ``{"units": 64, "pooling": "max"}``."""
    fields: dict[str, object] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            raise SystemExit(f"{pair!r}: expected FIELD=JSON, e.g. units=64")
        fields[name] = json.loads(value)
    return fields


if __name__ == "__main__":
    main()
