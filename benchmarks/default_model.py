"""The default model on the full data: test accuracy, CPU training time, export + parity time.

    uv run python benchmarks/default_model.py [--preset default] [--seed 42]

Runs the retraining steps as the flow does (train -> evaluate -> register -> gate ->
export with parity on all 25,000 test reviews) and prints each figure beside its
target: test accuracy >= 0.880, training <= 20 min on this CPU, export and
parity together <= 2 min.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _common import parser, prepare

PRESETS_NAMES = ("bidirectional", "bilstm_pool", "classic", "default")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--preset", default="default", choices=PRESETS_NAMES)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs")
    args = p.parse_args()

    from lstm_model.evaluation.config import GateConfig
    from lstm_model.evaluation.evaluate import evaluate_model
    from lstm_model.model.config import PRESETS
    from lstm_model.release.config import ExportConfig
    from lstm_model.release.promotion import export_candidate, gate_candidate, register_candidate
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.fit import train_model

    tokeniser, model = PRESETS[args.preset]
    train = TrainConfig(seed=args.seed, **({"epochs": args.epochs} if args.epochs else {}))
    reviews, tokenised = prepare(args.source, args.workspace, tokeniser)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        trained = train_model(tokenised, model, train, root / "run", verbose=2)
        train_minutes = (time.perf_counter() - started) / 60
        evaluation = evaluate_model(trained.model_path, tokenised, trained.history, root / "ev")
        version = register_candidate(
            root / "registry", trained, evaluation, tokenised, model_config=model,
            train_config=train,
        )  # fmt: skip
        gate_candidate(root / "registry", version, GateConfig(min_accuracy=0.0))
        started = time.perf_counter()
        parity = export_candidate(root / "registry", version, reviews, ExportConfig())
        export_minutes = (time.perf_counter() - started) / 60

    accuracy = evaluation.metrics.accuracy
    print(
        f"preset {args.preset}, seed {args.seed}: {trained.epochs_run} epochs "
        f"(best {trained.best_epoch}), {trained.lstm_kernel}"
    )
    print(
        f"test accuracy        {accuracy:.4f}   target >= 0.8800  "
        + ("ok" if accuracy >= 0.88 else "BELOW")
    )
    print(
        f"training time        {train_minutes:6.1f} min target <= 20 min  "
        + ("ok" if train_minutes <= 20 else "OVER")
    )
    print(
        f"export + parity      {export_minutes:6.2f} min target <= 2 min   "
        + ("ok" if export_minutes <= 2 else "OVER")
    )
    print(f"  {parity.describe()}")
    print(
        f"  ROC AUC {evaluation.metrics.roc_auc:.4f}, F1 {evaluation.metrics.f1:.4f}, "
        f"val_accuracy by epoch {[round(v, 4) for v in trained.history['val_accuracy']]}"
    )


if __name__ == "__main__":
    main()
