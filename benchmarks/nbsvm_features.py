"""Where the NBSVM branch's accuracy could come from: its features, measured alone.

    uv run python benchmarks/nbsvm_features.py [--source ARCHIVE] [--workspace DIR]

The NBSVM branch carries most of the default's decision (combiner weight 0.57), so the
92.5% goal depends on it. This fits it alone, as ``training.fit_nbsvm`` does (liblinear
logistic regression over naive-Bayes-scaled counts), on the default split of the full
archive, for each feature set below, and prints validation and test accuracy beside the
default's features (the reference, same run). C is chosen on validation (0.1, 0.3, 1);
the test split only reports.

Feature sets: the default (word and bigram counts, bigrams by the model's own hash into
2^20 buckets); binary presence instead of counts; trigrams added (the model's hash);
bigrams hashed into 2^22 buckets by a well-mixed 64-bit hash, which the model's int32 ops
cannot compute (the ceiling of fewer collisions), with and without trigrams; a 200,000-word
vocabulary instead of 50,000; and a blend with a ridge regression on the 1-10 star ratings
of the training reviews (the blend's two weights fitted on the validation rows, so its
validation figure is in-sample).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from _common import parser, prepare

Grams = Callable[[np.ndarray], np.ndarray]
BUCKETS = 2**20
CS = (0.1, 0.3, 1.0)


def model_hash(order: int, buckets: int = BUCKETS) -> Grams:
    """The n-gram ids the model computes (``HashedNgrams``), 0 for none."""
    from lstm_model.model.layers import HashedNgrams

    layer = HashedNgrams(order, buckets)

    def grams(ids: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [np.asarray(layer(ids[i : i + 4096])) for i in range(0, len(ids), 4096)]
        ).astype(np.int64)

    return grams


def mixed_hash(order: int, buckets: int) -> Grams:
    """N-gram ids from the exact n-gram (a base-2^17 number) through a 64-bit mix."""

    def grams(ids: np.ndarray) -> np.ndarray:
        wide = ids.astype(np.uint64)
        width = ids.shape[1] - order + 1
        key, known = np.zeros((len(ids), width), np.uint64), np.ones((len(ids), width), bool)
        for shift in range(order):
            key = (key << np.uint64(17)) | wide[:, shift : shift + width]
            known &= ids[:, shift : shift + width] > 1
        key = key * np.uint64(0x9E3779B97F4A7C15)
        key ^= key >> np.uint64(29)
        return np.where(known, (key % np.uint64(buckets)).astype(np.int64) + 1, 0)

    return grams


def features(
    ids: np.ndarray, vocab: int, grams: list[tuple[Grams, int]], binary: bool
) -> sp.csr_matrix:
    """Rows of word counts then each n-gram order's counts (id 0 = none, left out)."""
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    known = ids >= 2
    parts_r, parts_c, offset = [rows[known]], [ids[known].astype(np.int64)], vocab
    for hashing, buckets in grams:
        g = hashing(ids)
        seen = g > 0
        parts_r.append(np.broadcast_to(np.arange(len(ids))[:, None], g.shape)[seen])
        parts_c.append(offset + g[seen])
        offset += buckets + 1
    r, c = np.concatenate(parts_r), np.concatenate(parts_c)
    matrix = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(ids), offset))
    matrix.sum_duplicates()
    if binary:
        matrix.data[:] = 1.0
    return matrix


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()

    from sklearn.linear_model import LogisticRegression, Ridge

    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import load_review_ids, load_split
    from lstm_model.data.ingest import load_reviews
    from lstm_model.data.splits import stratified_split
    from lstm_model.training.config import TrainConfig
    from lstm_model.training.weights import nb_ratios

    data, tokenised = {}, {}
    for vocab in (50_000, 200_000):
        reviews, tokenised[vocab] = prepare(
            args.source, args.workspace, TokeniserConfig(vocab_size=vocab)
        )
        data[vocab] = (load_split(tokenised[vocab], "train"), load_split(tokenised[vocab], "test"))
    (_, y), _ = data[50_000]
    train_config = TrainConfig()
    fit, val = stratified_split(y, train_config.validation_fraction, train_config.seed)
    table = load_reviews(reviews, ["split", "review_id", "label", "rating"]).to_pandas()
    ratings = table[table["split"] == "train"].set_index(["review_id", "label"])["rating"]
    stars = ratings.loc[list(zip(load_review_ids(tokenised[50_000], "train"), y, strict=True))]
    stars = stars.to_numpy().astype(np.float64) - 5.5

    def fit_one(name: str, vocab: int, grams: list[tuple[Grams, int]], binary: bool,
                blend_ratings: bool = False) -> tuple[float, float]:  # fmt: skip
        started = time.perf_counter()
        (xs, ys), (xt, yt) = data[vocab]
        train, test = features(xs, vocab, grams, binary), features(xt, vocab, grams, binary)
        scale = sp.diags(nb_ratios(train[fit], ys[fit]))
        a, a_val, a_test = train[fit] @ scale, train[val] @ scale, test @ scale
        best = (-1.0, 0.0, 0.0)
        if blend_ratings:
            ridge = Ridge(alpha=300.0, solver="sparse_cg").fit(a, stars[fit])
        for c in CS:
            regression = LogisticRegression(C=c, solver="liblinear", max_iter=1000).fit(a, ys[fit])
            logit_val = regression.decision_function(a_val)
            logit_test = regression.decision_function(a_test)
            if blend_ratings:
                both_val = np.c_[logit_val, ridge.predict(a_val)]
                blend = LogisticRegression().fit(both_val, ys[val])
                logit_val = blend.decision_function(both_val)
                logit_test = blend.decision_function(np.c_[logit_test, ridge.predict(a_test)])
            accuracy_val = float(np.mean((logit_val > 0) == (ys[val] == 1)))
            if accuracy_val > best[0]:
                best = (accuracy_val, float(np.mean((logit_test > 0) == (yt == 1))), c)
        print(f"{name:58} C={best[2]:<4} validation {best[0]:.4f}  test {best[1]:.4f}  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
        return best[0], best[1]

    print("NBSVM branch alone, full archive, default split; C chosen on validation")
    reference = fit_one("default: counts, words + bigrams (model hash, 2^20)", 50_000,
                        [(model_hash(2), BUCKETS)], binary=False)  # fmt: skip
    tried = {
        "binary presence": (50_000, [(model_hash(2), BUCKETS)], True, False),
        "+ trigrams (model hash, 2^20 each)": (
            50_000, [(model_hash(2), BUCKETS), (model_hash(3), BUCKETS)], False, False),
        "bigrams by a 64-bit hash into 2^22, binary": (
            50_000, [(mixed_hash(2, 2**22), 2**22)], True, False),
        "bigrams + trigrams by a 64-bit hash into 2^22 each, binary": (
            50_000, [(mixed_hash(2, 2**22), 2**22), (mixed_hash(3, 2**22), 2**22)], True, False),
        "vocabulary 200,000 instead of 50,000": (
            200_000, [(model_hash(2), BUCKETS)], False, False),
        "blended with a ridge regression on the star ratings": (
            50_000, [(model_hash(2), BUCKETS)], False, True),
    }  # fmt: skip
    for name, (vocab, grams, binary, blend) in tried.items():
        _, test = fit_one(name, vocab, grams, binary, blend)
        print(f"{'':58} test against the default: {(test - reference[1]) * 100:+.2f} points")


if __name__ == "__main__":
    main()
