"""Test accuracy per training time of the model variants, over several seeds, on this machine.

    uv run python benchmarks/variants.py [--variants default lstm400 ...] [--seeds 42 7 123]

Trains each variant on the full default tokenisation (same split) once per seed, reads the
test split once per run, and writes a table (stdout and ``docs/variants.md``) and a plot of
accuracy against training minutes (``docs/variants.png``) beside the linear baseline and
the goals. Per run it records the test accuracy, the CPU training minutes, the size of the
``.keras`` file, what removing the LSTM branch changes (the branch ablation of the
evaluation report), and the accuracy on the short-text slice (the last sentence of five
words or more of each test review, with the review's label: noisy labels, see
``benchmarks/short_texts.py``).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import last_sentence, parser, prepare

DOCS = Path("docs")
GOALS = {"goal 92.5%": 0.925, "old goal 91.5%": 0.915}


def variants() -> dict[str, tuple[object, object, str]]:
    from lstm_model.model.config import ModelConfig
    from lstm_model.training.config import TrainConfig

    # Each row keeps the model it was measured with. Until the NBSVM branch became the
    # default, the LSTM read the last 400 tokens; until 2026-11-28 the n-gram embeddings
    # were 8 wide (the default now: 4).
    base_model, base_train = ModelConfig(nbsvm=False, lstm_maxlen=400, ngram_dim=8), TrainConfig()
    wide = ModelConfig(ngram_dim=8)
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
            "the three branches, the LSTM reading the last 100 tokens, 4-wide n-gram embeddings",
        ),
        "residual": (
            ModelConfig(),
            base_train.model_copy(update={"lstm_residual_folds": 5}),
            "default with the LSTM fit beside the NBSVM branch's out-of-fold logits (5 folds)",
        ),
        "regions": (
            ModelConfig(lstm_region_buckets=2**16),
            base_train,
            "default whose LSTM steps also read a trainable embedding of the bigram they end "
            "(2^16 buckets)",
        ),
        "blocks": (
            ModelConfig(),
            base_train.model_copy(update={"validation_block": 100}),
            "default validated on runs of 100 consecutive review ids (mostly unseen movies)",
        ),
        "ngram_dim8": (
            wide,
            base_train,
            "the default before: 8-wide n-gram embeddings",
        ),
        "lstm400": (
            wide.model_copy(update={"lstm_maxlen": 400}),
            base_train,
            "ngram_dim8 with the LSTM reading the last 400 tokens (two_branch + NBSVM)",
        ),
        "crops": (
            wide,
            base_train.model_copy(update={"crop_copies": 1}),
            "ngram_dim8 trained on the rows plus one crop of 5-40 words of each",
        ),
        "nbsvm_scores": (
            wide.model_copy(update={"lstm_nbsvm_scores": True}),
            base_train,
            "ngram_dim8 whose LSTM also reads each word's and bigram's NBSVM score",
        ),
        # The size trade of the small TFLite: hash buckets and embedding widths.
        "buckets18": (
            wide.model_copy(update={"ngram_buckets": 2**18}),
            base_train,
            "ngram_dim8 with 2^18 n-gram buckets (n-gram and NBSVM branches) instead of 2^20",
        ),
        "ngram_dim16": (
            ModelConfig(ngram_dim=16),
            base_train,
            "default with 16-wide n-gram embeddings",
        ),
        "embedding32": (
            wide.model_copy(update={"embedding_dim": 32}),
            base_train,
            "ngram_dim8 with a 32-wide LSTM word embedding instead of 64",
        ),
        "lstm_only": (
            base_model.model_copy(update={"ngram_order": 0, "nbsvm": False}),
            base_train,
            "two_branch's LSTM branch alone (no n-gram branch)",
        ),
    }


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["default", "lstm400"])
    p.add_argument("--seeds", nargs="+", type=int, default=[42, 7, 123])
    args = p.parse_args()

    import numpy as np
    import pyarrow.compute as pc

    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import load_split
    from lstm_model.data.ingest import load_reviews
    from lstm_model.data.tokeniser import Tokeniser
    from lstm_model.evaluation.ablation import branch_ablation, predict_branches
    from lstm_model.model.builders import load_model, predict_ids
    from lstm_model.release.config import ExportConfig
    from lstm_model.release.mobile import check_mobile, write_mobile
    from lstm_model.training.fit import train_model

    reviews, tokenised = prepare(args.source, args.workspace, TokeniserConfig())
    x_test, y_test = load_split(tokenised, "test")
    table = load_reviews(reviews, ["split", "label", "text"])
    test = table.filter(pc.equal(table["split"], "test"))
    test_texts = test["text"].to_pylist()
    short = [(s, y) for s, y in zip(map(last_sentence, test["text"].to_pylist()),
                                    test["label"].to_numpy(), strict=True) if s]  # fmt: skip
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)
    x_short = tokeniser.encode([s for s, _ in short])
    y_short = np.array([y for _, y in short])
    variants_table = variants()
    rows = []
    for name in args.variants:
        model_config, train_config, what = variants_table[name]
        row: dict[str, object] = {"variant": name, "what": what, "seeds": list(args.seeds)}
        runs: dict[str, list[float]] = {k: [] for k in
                                        ("accuracy", "minutes", "epochs", "without_lstm",
                                         "short", "model_mb", "mobile_mb",
                                         "mobile_accuracy", "mobile_passed")}  # fmt: skip
        for seed in args.seeds:
            config = train_config.model_copy(update={"seed": seed})  # type: ignore[attr-defined]
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                trained = train_model(tokenised, model_config, config, Path(tmp), verbose=0)
                minutes = (time.perf_counter() - started) / 60
                size = trained.model_path.stat().st_size / 1e6
                model = load_model(trained.model_path)
                mobile_path = Path(tmp) / "mobile.tflite"
                write_mobile(trained.model_path, tokenised.tokeniser_dir, mobile_path)
                probabilities, logits = predict_branches(model, x_test)
                mobile = check_mobile(
                    mobile_path, tokeniser, test_texts, y_test, probabilities,
                    ExportConfig().mobile_accuracy_tolerance,
                    ids=x_test,
                )  # fmt: skip
            ablation = {r.variant: r for r in branch_ablation(model, probabilities, logits, y_test)}
            accuracy = float(np.mean((probabilities >= 0.5) == (y_test == 1)))
            short_accuracy = float(np.mean((predict_ids(model, x_short) >= 0.5) == (y_short == 1)))
            cut = ablation.get("without LSTM")
            without = cut.change if cut is not None else float("nan")
            for key, value in (("accuracy", accuracy), ("minutes", minutes),
                               ("epochs", trained.epochs_run), ("without_lstm", without),
                               ("short", short_accuracy), ("model_mb", size),
                               ("mobile_mb", mobile.size_bytes / 1e6),
                               ("mobile_accuracy", mobile.mobile_accuracy),
                               ("mobile_passed", mobile.passed)):  # fmt: skip
                runs[key].append(round(float(value), 4))
            print(f"{name:10} seed {seed:4}: test accuracy {accuracy:.4f}  {minutes:5.1f} min  "
                  f"({trained.epochs_run} epochs)  without LSTM {without * 100:+.2f} points  "
                  f"short slice {short_accuracy:.4f}  model {size:.1f} MB  "
                  f"mobile {mobile.size_bytes / 1e6:.1f} MB at {mobile.mobile_accuracy:.4f} "
                  f"({'passes' if mobile.passed else 'FAILS'} the export's accuracy rule)",
                  flush=True)  # fmt: skip
        row.update(runs)
        rows.append(row)
    _write(rows)


def _stats(values: list[float]) -> tuple[float, float]:
    """Mean and half the range (the spread the tables quote) of one figure over seeds."""
    return statistics.fmean(values), (max(values) - min(values)) / 2


def _cell(values: object, digits: int = 4, scale: float = 1.0) -> str:
    if not isinstance(values, list):  # a row of the single-seed table before
        values = [values]
    mean, spread = _stats([float(v) * scale for v in values])
    return f"{mean:.{digits}f}" + (f" ± {spread:.{digits}f}" if spread else "")


def _write(new_rows: list[dict[str, object]]) -> None:
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
        "| variant | seeds | test accuracy (mean ± half range) | CPU training minutes | "
        "without the LSTM (points) | short slice | `.keras` MB | mobile MB | mobile accuracy | "
        "seeds whose mobile file passes the export's rule | what |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['variant']} | {', '.join(map(str, r.get('seeds', [42])))} | "
            f"{_cell(r['accuracy'])} | {_cell(r['minutes'], 1)} | "
            + (f"{_cell(r['without_lstm'], 2, 100)} | {_cell(r['short'])} | "
               f"{_cell(r['model_mb'], 1)} | " if "short" in r else "- | - | - | ")
            + (f"{_cell(r['mobile_mb'], 1)} | " if "mobile_mb" in r else "- | ")
            + (f"{_cell(r['mobile_accuracy'])} | " if "mobile_accuracy" in r else "- | ")
            + (f"{sum(map(bool, r['mobile_passed']))} of {len(r['mobile_passed'])} | "
               if "mobile_passed" in r else "- | ")
            + f"{r['what']} |"
            for r in rows
        ),
    ]  # fmt: skip
    (DOCS / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for r in rows:
        accuracy = r["accuracy"] if isinstance(r["accuracy"], list) else [r["accuracy"]]
        minutes = r["minutes"] if isinstance(r["minutes"], list) else [r["minutes"]]
        (a, a_spread), (m, _) = _stats(accuracy), _stats(minutes)  # type: ignore[arg-type]
        axes.errorbar(m, a, yerr=a_spread, fmt="o", color="tab:blue", capsize=3)
        axes.annotate(str(r["variant"]), (m, a),
                      textcoords="offset points", xytext=(5, 4), fontsize=8)  # fmt: skip
    baseline = _baseline_accuracy()
    if baseline:
        axes.axhline(baseline, color="tab:gray", linestyle="--", linewidth=1)
        axes.text(0.2, baseline + 0.0005, "TF-IDF + LR baseline", fontsize=8, color="tab:gray")
    for label, goal in GOALS.items():
        axes.axhline(goal, color="tab:red", linestyle=":", linewidth=1)
        axes.text(0.2, goal + 0.0005, label, fontsize=8, color="tab:red")
    axes.set_xlabel("training time on the 2-core CPU (minutes)")
    axes.set_ylabel("test accuracy")
    axes.set_xlim(left=0)
    axes.set_title("IMDB: accuracy per training time (full data; bars: spread over seeds)")
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
