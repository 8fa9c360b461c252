"""Short texts: the default model and the TF-IDF baseline on the last sentences of reviews.

    uv run python benchmarks/short_texts.py [--source ARCHIVE] [--workspace DIR]
                                           [--registry DIR] [--version N]

The scoring inbox gets one-line reviews and posts as well as 230-word reviews, and no
labelled short texts ship with aclImdb. This builds a short-text slice from the data here:
for every aclImdb test review, its last sentence of at least five words, labelled with the
review's label. The labels are noisy (a review's last sentence need not carry its verdict),
so both models are held to the same noisy labels, and the figure is a comparison, not an
absolute accuracy on short texts.

Scored: a registry version (the champion unless ``--version``), as batch scoring scores
text, and the pipeline's linear baseline (TF-IDF 1-2-grams + logistic regression, fitted
on the same training rows as the model). Printed: accuracy with its 95% interval for each,
on the short slice and on the whole test split (the reference, in the same run).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from _common import last_sentence, parser


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--version", type=int, default=None, help="default: the champion")
    args = p.parse_args()

    from lstm_model.data.ingest import ingest_reviews, load_reviews
    from lstm_model.data.sources import resolve_source
    from lstm_model.data.splits import stratified_split
    from lstm_model.data.tokeniser import Tokeniser
    from lstm_model.evaluation.baseline import baseline_probabilities, fit_baseline_classifier
    from lstm_model.evaluation.config import BaselineConfig
    from lstm_model.evaluation.slices import wilson_interval
    from lstm_model.model.builders import load_model, predict_ids
    from lstm_model.release import layout
    from lstm_model.release.registry import Registry
    from lstm_model.training.config import TrainConfig

    registry = Registry(args.registry)
    version = args.version or registry.champion()
    if version is None:
        raise SystemExit(f"no champion in {args.registry}: run make retrain, or pass --version")
    folder, manifest = registry.load_version(version), registry.manifest(version)

    reviews = ingest_reviews(resolve_source(str(args.source)), args.workspace)
    # The baseline is fitted on the model's training rows: only if these are its reviews.
    dataset = (manifest.get("fingerprint") or {}).get("dataset", reviews.sha256)
    if manifest["data"]["reviews_sha256"] != reviews.sha256 or dataset != reviews.sha256:
        raise SystemExit(
            f"version {version} was not trained on {args.source} alone (its reviews "
            f"{manifest['data']['reviews_sha256'][:12]}, dataset {dataset[:12]}; these "
            f"{reviews.sha256[:12]}): pass the archive it was trained on"
        )
    table = load_reviews(reviews, ["split", "label", "text"])
    train = table.filter(pc.equal(table["split"], "train"))
    test = table.filter(pc.equal(table["split"], "test"))
    texts, labels = test["text"].to_pylist(), test["label"].to_numpy()
    short = [(s, y) for s, y in zip(map(last_sentence, texts), labels, strict=True) if s]
    short_texts, short_labels = [s for s, _ in short], np.array([y for _, y in short])
    words = np.array([len(s.split()) for s in short_texts])
    print(f"short slice: {len(short)} of {len(texts)} test reviews have a last sentence of "
          f">= 5 words; {words.mean():.1f} words on average (median {np.median(words):.0f}), "
          f"against {np.mean([len(t.split()) for t in texts]):.1f} for a whole review; "
          f"{short_labels.mean():.3f} positive")  # fmt: skip

    # The baseline as `make retrain` fits it: its default config, the model's training rows.
    split = TrainConfig(**manifest["config"]["train"])
    baseline_config = BaselineConfig()
    rows, _ = stratified_split(train["label"].to_numpy(), split.validation_fraction, split.seed)
    started = time.perf_counter()
    baseline = fit_baseline_classifier(
        train["text"].take(rows), train["label"].to_numpy()[rows], baseline_config
    )
    print(f"baseline fitted on {len(rows)} training rows in {time.perf_counter() - started:.0f} s")

    model = load_model(folder / layout.MODEL)
    tokeniser = Tokeniser.load(folder / layout.TOKENISER_DIR)
    scorers = {
        f"model version {version}": lambda xs: predict_ids(model, tokeniser.encode(xs)),
        "TF-IDF baseline": lambda xs: baseline_probabilities(baseline, xs),
    }
    print(f"{'':22} {'short slice (95%)':>26} {'whole test split (95%)':>26} {'seconds':>8}")
    correct: dict[tuple[str, str], np.ndarray] = {}
    parts = {"short": (short_texts, short_labels), "whole": (texts, labels)}
    for name, score in scorers.items():
        started = time.perf_counter()
        cells = []
        for part, (xs, ys) in parts.items():
            correct[name, part] = (np.ravel(score(xs)) >= 0.5) == (ys == 1)
            low, high = wilson_interval(int(correct[name, part].sum()), len(ys))
            cells.append(f"{correct[name, part].mean():.4f} ({low:.3f}-{high:.3f})")
        print(f"{name:22} {cells[0]:>26} {cells[1]:>26} {time.perf_counter() - started:8.0f}")
    # Both are scored on the same texts: McNemar's test on the texts only one gets right.
    model_name, baseline_name = scorers
    for part in parts:
        a, b = correct[model_name, part], correct[baseline_name, part]
        only_model, only_baseline = int(np.sum(a & ~b)), int(np.sum(~a & b))
        z = (only_model - only_baseline) / max(np.sqrt(only_model + only_baseline), 1.0)
        print(f"{part}: right by the model only {only_model}, by the baseline only "
              f"{only_baseline}; McNemar z = {z:.2f} (|z| > 1.96: differ at 95%)")  # fmt: skip


if __name__ == "__main__":
    main()
