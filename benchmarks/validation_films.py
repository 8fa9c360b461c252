"""How far validation accuracy is from test accuracy, by how the validation share is drawn.

    uv run python benchmarks/validation_films.py [--source ARCHIVE] [--workspace DIR]

aclImdb's test reviews are of films that no training review is of, while a validation
share of single rows shares films with the fit rows. This fits the NBSVM branch alone (as
training does, ``fit_nbsvm``, C = 0.3) on the fit rows of each split, for seeds 42, 7 and
123, and prints its validation and test accuracy and the gap between them: validation
drawn as single rows (the default), and as runs of 50, 100 and 250 consecutive review ids
of a class (``TrainConfig.validation_block``; aclImdb numbers each film's reviews
consecutively, so runs keep most films on one side). A gap near zero means validation
judges a model as the test split will.
"""

from __future__ import annotations

import statistics

import numpy as np
from _common import parser, prepare

SEEDS = (42, 7, 123)
BLOCKS = (1, 50, 100, 250)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()

    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import load_review_ids, load_split
    from lstm_model.data.splits import id_blocks, stratified_split
    from lstm_model.model.builders import NBSVM_LOGIT, branch_logit, build_model
    from lstm_model.model.config import ModelConfig
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.nbsvm import fit_nbsvm

    _, tokenised = prepare(args.source, args.workspace, TokeniserConfig())
    x, y = load_split(tokenised, "train")
    x_test, y_test = load_split(tokenised, "test")
    ids = load_review_ids(tokenised, "train")
    config = ModelConfig()
    model = build_model(config, vocab_size=tokenised.config.vocab_size,
                        maxlen=tokenised.config.maxlen, seed=0)  # fmt: skip
    fraction = TrainConfig().validation_fraction
    print("NBSVM branch alone, full archive: validation and test accuracy by validation draw")
    for block in BLOCKS:
        gaps = []
        for seed in SEEDS:
            fit, val = stratified_split(y, fraction, seed, groups=id_blocks(ids, block))
            validation = fit_nbsvm(model, x[fit], y[fit], (x[val], y[val]), config.nbsvm_c)
            logits = branch_logit(model, NBSVM_LOGIT, x_test)
            test = float(np.mean((logits > 0) == (y_test == 1)))
            gaps.append(validation - test)
            name = "single rows" if block == 1 else f"runs of {block} ids"
            print(f"{name:16} seed {seed:4}: validation {validation:.4f} ({len(val)} rows)  "
                  f"test {test:.4f}  gap {100 * (validation - test):+.2f} points",
                  flush=True)  # fmt: skip
        print(f"{'':16} mean gap {100 * statistics.fmean(gaps):+.2f} points, mean |gap| "
              f"{100 * statistics.fmean(map(abs, gaps)):.2f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
