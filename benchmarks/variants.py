"""Test accuracy per training time of the model variants, on this machine.

    uv run python benchmarks/variants.py [--variants default attention ...] [--seed 42]

Trains each variant on the full default tokenisation (same split, same seed), reads the
test split once per variant, and writes a table (stdout and ``docs/variants.md``) and a
plot of accuracy against training minutes (``docs/variants.png``) beside the linear
baseline and the 91.5% goal.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks._common import parser, prepare

DOCS = Path("docs")
GOAL = 0.915


def variants() -> dict[str, tuple[object, object, str]]:
    from lstm_model.model.config import ModelConfig
    from lstm_model.training.config import TrainConfig

    # The measurements before the NBSVM branch became the default were of this model:
    base_model, base_train = ModelConfig(nbsvm=False), TrainConfig()
    return {
        "two_branch": (base_model, base_train, "BiLSTM max+mean pool + word/bigram branch"),
        "attention": (
            base_model.model_copy(update={"pooling": "attention"}),
            base_train,
            "two_branch with attention pooling on the LSTM branch",
        ),
        "l2": (
            base_model.model_copy(update={"l2": 1e-5}),
            base_train,
            "two_branch with L2 1e-5 on embedding, LSTM and output weights",
        ),
        "augment": (
            base_model,
            base_train.model_copy(update={"augment_copies": 1, "augment_rate": 0.1}),
            "two_branch trained on the rows plus one synonym-replaced copy",
        ),
        "default": (
            ModelConfig(),
            base_train,
            "two_branch + an NBSVM branch (NB-weighted word+bigram regression, liblinear)",
        ),
        "lstm_only": (
            base_model.model_copy(update={"ngram_order": 0, "nbsvm": False}),
            base_train,
            "two_branch's LSTM branch alone (no n-gram branch)",
        ),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(variants()))
    p.add_argument("--seed", type=int, default=42)
    args = p.parse_args()

    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import load_split
    from lstm_model.evaluation.evaluate import compute_metrics
    from lstm_model.model.builders import load_model
    from lstm_model.training.fit import train_model

    _, tokenised = prepare(args.source, args.workspace, TokeniserConfig())
    x_test, y_test = load_split(tokenised, "test")
    table = variants()
    rows = []
    for name in args.variants:
        model_config, train_config, what = table[name]
        train_config = train_config.model_copy(update={"seed": args.seed})  # type: ignore[attr-defined]
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            trained = train_model(tokenised, model_config, train_config, Path(tmp), verbose=0)
            minutes = (time.perf_counter() - started) / 60
            model = load_model(trained.model_path)
            probabilities = model.predict(x_test, batch_size=1024, verbose=0).ravel()
        accuracy = compute_metrics(y_test, probabilities).accuracy
        rows.append({"variant": name, "what": what, "accuracy": round(accuracy, 4),
                     "minutes": round(minutes, 1), "epochs": trained.epochs_run})  # fmt: skip
        print(f"{name:10} test accuracy {accuracy:.4f}  {minutes:5.1f} min  "
              f"({trained.epochs_run} epochs)  {what}", flush=True)  # fmt: skip
    _write(rows, args.seed)


def _write(new_rows: list[dict[str, object]], seed: int) -> None:
    """Merge the rows into ``docs/variants.json`` (by variant) and redraw table and plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    DOCS.mkdir(exist_ok=True)
    store = DOCS / "variants.json"
    merged = {r["variant"]: r for r in json.loads(store.read_text())} if store.is_file() else {}
    merged.update({r["variant"]: r for r in new_rows})
    rows = list(merged.values())
    store.write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        f"| variant | test accuracy (seed {seed}) | CPU training minutes | epochs | what |",
        "|---|---|---|---|---|",
        *(
            f"| {r['variant']} | {r['accuracy']:.4f} | {r['minutes']} | {r['epochs']} | "
            f"{r['what']} |"
            for r in rows
        ),
    ]
    (DOCS / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for r in rows:
        axes.scatter(r["minutes"], r["accuracy"], color="tab:blue")
        axes.annotate(str(r["variant"]), (r["minutes"], r["accuracy"]),
                      textcoords="offset points", xytext=(5, 4), fontsize=8)  # fmt: skip
    baseline = _baseline_accuracy()
    if baseline:
        axes.axhline(baseline, color="tab:gray", linestyle="--", linewidth=1)
        axes.text(0.2, baseline + 0.0005, "TF-IDF + LR baseline", fontsize=8, color="tab:gray")
    axes.axhline(GOAL, color="tab:red", linestyle=":", linewidth=1)
    axes.text(0.2, GOAL + 0.0005, "goal 91.5%", fontsize=8, color="tab:red")
    axes.set_xlabel("training time on the 2-core CPU (minutes)")
    axes.set_ylabel("test accuracy")
    axes.set_xlim(left=0)
    axes.set_title("IMDB: accuracy per training time (full data, one seed)")
    figure.tight_layout()
    figure.savefig(DOCS / "variants.png")


def _baseline_accuracy() -> float | None:
    """The linear baseline's test accuracy as the champion's manifest records it."""
    pointer = Path("artifacts/registry/champion.json")
    if not pointer.is_file():
        return None
    version = json.loads(pointer.read_text())["version"]
    manifest = json.loads(Path(f"artifacts/registry/versions/{version}/manifest.json").read_text())
    return (manifest.get("baseline") or {}).get("accuracy")


if __name__ == "__main__":
    main()
