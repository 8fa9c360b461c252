"""What a labelled domain drop does to the model, and what it costs, on the full data.

    uv run python benchmarks/domain_drop.py [--source ARCHIVE] [--workspace DIR] [--rows N]
                                           [--unweighted]

Each step is `lstm-pipeline retrain` as the user runs it (a new process, its own local
Prefect server), in one fresh workspace:

1. a retrain on aclImdb alone: version 1, the champion;
2. a labelled drop in the inbox, then a retrain: the drop is taken, becomes a span, and
   the model is trained on aclImdb train plus the span's train share, with the domain's
   weight chosen on its validation rows; version 2, gated per slice against version 1;
3. with ``--unweighted``, the same data with ``--domain-weight short=1`` (no weighting).

The drop, built with no hand-written label: the aclImdb test reviews are cut in two halves
by a hash of their text. From ``--rows`` reviews of half A, the last sentence of at least
five words, labelled with its review's label (noisy: a last sentence need not carry the
review's verdict), domain "short". The pipeline splits those texts 80/20 by hash as it
does any drop. Half B of aclImdb test is never touched, so the aclImdb accuracy before and
after is also reported on half B alone: the pipeline's own figure on the whole test split
includes half A, whose sentences the second model saw in training.

Printed: the retrain times, the domain slice's accuracy (95% interval) of each version,
aclImdb test accuracy (whole and half B), and the weight chosen with the log loss of each
candidate.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import last_sentence, parser

DOMAIN = "short"


def _retrain(source: Path, workspace: Path, *extra: str) -> tuple[float, int, str]:
    command = [str(Path(sys.executable).with_name("lstm-pipeline")), "retrain",
               "--source", str(source), "--workspace", str(workspace),
               "--labelled-settle-seconds", "0", *extra]  # fmt: skip
    env = {**os.environ, "PREFECT_HOME": str(workspace / "prefect")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    said = done.stdout[done.stdout.index("{") :] if "{" in done.stdout else done.stderr[-2000:]
    return seconds, done.returncode, said


def _half_a(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 0


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(workspace=Path("artifacts/benchmarks/domain_drop"))
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--unweighted", action="store_true")
    p.add_argument(
        "--retrain-args", default="", help="more options for every retrain (a quick check)"
    )
    args = p.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"{args.source} not found: pass --source PATH to the full archive")

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from lstm_model.data.ingest import ingest_reviews, load_reviews
    from lstm_model.data.sources import resolve_source
    from lstm_model.release import layout
    from lstm_model.release.registry import Registry

    root = args.workspace.resolve()
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    extra = args.retrain_args.split()
    runs = {"aclImdb alone": _retrain(args.source, root, *extra)}

    # a cache hit: the reviews the first run ingested
    reviews = ingest_reviews(resolve_source(str(args.source)), root)
    table = load_reviews(reviews, ["split", "label", "text"])
    test = table.filter(pc.equal(table["split"], "test"))
    texts, labels = test["text"].to_pylist(), test["label"].to_numpy()
    in_a = np.array([_half_a(t) for t in texts])
    order = np.random.default_rng(0).permutation(np.flatnonzero(in_a))
    rows = []
    for i in order:
        sentence = last_sentence(texts[i])
        if sentence is not None:
            rows.append((sentence, int(labels[i])))
        if len(rows) == args.rows:
            break
    inbox = root / "labelled" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    drop = pa.table({"text": [t for t, _ in rows], "label": [label for _, label in rows]})
    pcsv.write_csv(drop, inbox / f"{DOMAIN}.csv")
    runs["with the drop"] = _retrain(args.source, root, *extra)
    if args.unweighted:
        runs["with the drop, weight 1"] = _retrain(
            args.source, root, *extra, "--domain-weight", f"{DOMAIN}=1"
        )

    from lstm_model.data.spans import list_spans
    from lstm_model.data.tokeniser import Tokeniser
    from lstm_model.evaluation.slices import domain_slices, score_slices
    from lstm_model.model.builders import load_model, predict_ids

    registry = Registry(root / "registry")
    drop_slices = domain_slices(list_spans(root / "labelled"))
    print(f"drop: {len(rows)} last sentences of aclImdb test reviews (half A), domain "
          f"{DOMAIN!r}, mean {np.mean([len(t.split()) for t, _ in rows]):.1f} words; "
          f"test share {sum(len(s.texts) for s in drop_slices)} texts")  # fmt: skip
    print(f"{'run':26} {'seconds':>8} {'exit':>4} {'version':>7} {'status':>9} "
          f"{'imdb':>7} {'imdb B':>7} {DOMAIN + ' (95%)':>22}  weight")  # fmt: skip
    for version, (name, (seconds, code, said)) in enumerate(runs.items(), start=1):
        if version not in {v.version for v in registry.list_versions()}:
            print(f"{name:26} {seconds:8.1f} {code:4d}  nothing registered: {said[-300:]}")
            continue
        folder, info = registry.path(version), registry.manifest(version)
        probabilities = np.load(folder / layout.EVALUATION_DIR / "test_probabilities.npy")
        right = (probabilities >= 0.5) == (labels == 1)
        model, tokeniser = (
            load_model(folder / layout.MODEL),
            Tokeniser.load(folder / layout.TOKENISER_DIR),
        )
        scored = score_slices(
            labels, probabilities, drop_slices,
            lambda texts, m=model, t=tokeniser: predict_ids(m, t.encode(texts)),
        )  # fmt: skip
        short = next(s for s in scored if s.slice == DOMAIN)
        shown = f"{short.accuracy:.4f} ({short.accuracy_low:.3f}-{short.accuracy_high:.3f})"
        weights = info["training"].get("domain_weights", [])
        weight = ", ".join(f"{w['weight']:g} ({w['chosen_by']})" for w in weights) or "-"
        print(f"{name:26} {seconds:8.1f} {code:4d} {version:7d} "
              f"{registry.status(version)['status']:>9} {right.mean():7.4f} "
              f"{right[~in_a].mean():7.4f} {shown:>22}  {weight}")  # fmt: skip
        for w in weights:
            for candidate, scores in sorted(w["tried"].items(), key=lambda kv: float(kv[0])):
                print(f"    weight {candidate:>4}: validation log loss {scores['log_loss']:.4f}, "
                      f"accuracy {scores['accuracy']:.4f} ({w['validation_rows']} rows), "
                      f"aclImdb validation accuracy {scores['imdb_accuracy']:.4f}")  # fmt: skip
        if code != 0:
            print(f"    exit {code}: {said[-600:]}")
    print(f"retrain time with the span / aclImdb alone: "
          f"{runs['with the drop'][0] / runs['aclImdb alone'][0]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
