"""What each branch of a registered model contributes on the aclImdb test split.

    python benchmarks/ablation.py --registry artifacts/registry --version 1 \
        --reviews artifacts/reviews/<hash>/reviews.parquet

The same table as the evaluation report of every version trained now
(``lstm_model.evaluation.ablation``), for a version registered before it existed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from lstm_model.data.tokeniser import Tokeniser
from lstm_model.evaluation.ablation import branch_ablation, predict_branches, render_ablation
from lstm_model.model.builders import load_model
from lstm_model.release import layout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--version", type=int, default=1)
    p.add_argument("--reviews", type=Path, required=True, help="the ingested Parquet")
    args = p.parse_args()
    folder = args.registry / "versions" / str(args.version)
    table = pq.read_table(args.reviews, columns=["split", "text", "label"])
    test = table.filter(pc.equal(table["split"], "test"))
    x = Tokeniser.load(folder / layout.TOKENISER_DIR).encode(test["text"])
    model = load_model(folder / layout.MODEL)
    probabilities, logits = predict_branches(model, x)
    rows = branch_ablation(model, probabilities, logits, test["label"].to_numpy())
    print(render_ablation(rows))


if __name__ == "__main__":
    main()
