"""Training throughput of the classic model: the pipeline's train_model against a plain
``model.fit`` script on the same arrays, in the same run.

    uv run python benchmarks/training_throughput.py [--epochs 2]

Both fit the same architecture (Embedding 10000x128, LSTM 64, dropout and recurrent
dropout 0.2) on the same 22,500 training rows with the same 2,500 validation rows and
batch size; the figure is training samples per second over the whole fit (median of the
per-epoch times; the fastest epochs are shown too, since this machine is noisy).
Target: pipeline >= plain.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from _common import parser, prepare


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()

    import keras

    from lstm_model.data.dataset import load_split
    from lstm_model.data.splits import stratified_split
    from lstm_model.model.config import CLASSIC_MODEL, CLASSIC_TOKENISER
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model

    _, tokenised = prepare(args.source, args.workspace, CLASSIC_TOKENISER)
    config = TrainConfig(epochs=args.epochs, early_stopping_patience=args.epochs)
    x, y = load_split(tokenised, "train")
    train_idx, val_idx = stratified_split(y, config.validation_fraction, config.seed)

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    # Plain script: what a user would write by hand.
    keras.utils.set_random_seed(config.seed)
    ids = keras.Input((tokenised.config.maxlen,), dtype="int32")
    h = keras.layers.Embedding(10_000, 128)(ids)
    h = keras.layers.LSTM(64, dropout=0.2, recurrent_dropout=0.2)(h)
    plain = keras.Model(ids, keras.layers.Dense(1, activation="sigmoid")(h))
    plain.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    plain.fit(
        x[train_idx], y[train_idx].astype("float32"),
        validation_data=(x[val_idx], y[val_idx].astype("float32")),
        epochs=args.epochs, batch_size=config.batch_size, callbacks=[timer], verbose=2,
    )  # fmt: skip
    plain_rate = len(train_idx) / statistics.median(timer.seconds)

    pipeline_epochs: list[float] = []
    marks = [time.perf_counter()]

    def on_epoch_end(epoch: int, epochs: int, logs: object) -> None:
        marks.append(time.perf_counter())
        pipeline_epochs.append(marks[-1] - marks[-2])

    with tempfile.TemporaryDirectory() as tmp:
        marks[0] = time.perf_counter()
        result = train_model(
            tokenised, CLASSIC_MODEL, config, Path(tmp), on_epoch_end=on_epoch_end, verbose=2
        )
    # The first pipeline "epoch" includes model building and callback setup, as plain's does.
    pipeline_rate = len(train_idx) / statistics.median(pipeline_epochs)

    print(
        f"classic model, {len(train_idx)} training rows, {args.epochs} epochs, "
        f"backend {result.backend}"
    )
    print(
        f"plain model.fit      {plain_rate:8.1f} samples/s  (epochs: "
        f"{', '.join(f'{s:.1f}s' for s in timer.seconds)})"
    )
    print(
        f"pipeline train_model {pipeline_rate:8.1f} samples/s  (epochs: "
        f"{', '.join(f'{s:.1f}s' for s in pipeline_epochs)})"
    )
    ratio = pipeline_rate / plain_rate
    best_ratio = min(timer.seconds) / min(pipeline_epochs)
    print(f"ratio pipeline/plain, median epochs {ratio:.3f}, fastest epochs {best_ratio:.3f}")
    print("target: pipeline >= plain (ratio >= 1.0): " + ("ok" if ratio >= 1.0 else "BELOW"))


if __name__ == "__main__":
    main()
