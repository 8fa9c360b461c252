"""Reviews Parquet to model-ready token ids, with the tokeniser fit on train only."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    MANIFEST_NAME,
    find_valid_artifact,
    require_sha256,
    sha256_text,
    staged_artifact,
    write_manifest,
)
from lstm_model.data.config import TokeniserConfig
from lstm_model.data.ingest import IngestResult, load_reviews
from lstm_model.data.tokeniser import Tokeniser

log = logging.getLogger(__name__)

TOKENISE_VERSION = "1"
TOKENISED_FILE = "tokenised.parquet"


def tokenised_schema(maxlen: int) -> pa.Schema:
    """Arrow schema of the tokenised dataset for a given sequence length."""
    return pa.schema(
        [
            pa.field("review_id", pa.int32(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("label", pa.int8(), nullable=False),
            pa.field("n_tokens", pa.int32(), nullable=False),
            pa.field("ids", pa.list_(pa.int32(), maxlen), nullable=False),
        ],
        metadata={"dataset": "imdb_tokenised", "tokenise_version": TOKENISE_VERSION},
    )


class TokenisedResult(BaseModel):
    """The tokenised dataset and its tokeniser; passed between pipeline steps."""

    model_config = ConfigDict(frozen=True)

    path: Path
    sha256: str
    tokeniser_dir: Path
    vocab_sha256: str
    reviews_sha256: str
    rows: int
    config: TokeniserConfig
    cached: bool


def tokenise_reviews(
    reviews: IngestResult, config: TokeniserConfig, out_root: Path
) -> TokenisedResult:
    """Fit the tokeniser on the train split, encode every review, publish both atomically.

    Output: ``out_root/tokenised/<key>/`` with ``tokenizer.json``, ``vocab.txt`` and
    ``tokenised.parquet`` (same row order as the reviews). The key hashes the reviews'
    sha256 and the config, so an unchanged input is a cache hit.
    """
    folder = tokenised_folder(reviews, config, out_root)
    manifest = find_valid_artifact(folder)
    if manifest is not None:
        log.info("tokenise: cache hit %s", folder)
        return _result(folder, manifest.content_sha256, manifest.files, reviews, config, True)

    started = time.perf_counter()
    table = load_reviews(reviews, columns=["review_id", "split", "label", "text"])
    train_text = table.filter(pc.equal(table["split"], "train"))["text"]
    tokeniser = Tokeniser.fit(train_text, config)
    ids, lengths = tokeniser.encode_with_lengths(table["text"])
    out = pa.table(
        {
            "review_id": table["review_id"],
            "split": table["split"],
            "label": table["label"],
            "n_tokens": pa.array(lengths, pa.int32()),
            "ids": pa.FixedSizeListArray.from_arrays(pa.array(ids.ravel()), config.maxlen),
        },
        schema=tokenised_schema(config.maxlen),
    )
    with staged_artifact(folder) as tmp:
        vocab_sha = tokeniser.save(tmp)
        pq.write_table(out, tmp / TOKENISED_FILE, compression="zstd")
        oov = float(np.mean(ids[ids != 0] == 1)) if ids.any() else 0.0
        manifest = write_manifest(
            tmp,
            kind="imdb_tokenised",
            main_file=TOKENISED_FILE,
            inputs={"reviews": reviews.sha256},
            config=config.model_dump(mode="json"),
            details={
                "rows": out.num_rows,
                "fit_rows": len(train_text),
                "vocab_sha256": vocab_sha,
                "oov_rate": round(oov, 6),
                "truncated_rows": int((lengths > config.maxlen).sum()),
                # reference figures for drift checks at scoring time
                "mean_chars": round(float(pc.mean(pc.utf8_length(table["text"])).as_py() or 0), 1),
                "mean_tokens": round(float(lengths.mean()) if len(lengths) else 0.0, 1),
            },
        )
    log.info(
        "tokenise: %d reviews in %.1f s (vocab %d, maxlen %d) -> %s",
        out.num_rows,
        time.perf_counter() - started,
        config.vocab_size,
        config.maxlen,
        folder,
    )
    return _result(folder, manifest.content_sha256, manifest.files, reviews, config, False)


def tokenised_folder(reviews: IngestResult, config: TokeniserConfig, out_root: Path) -> Path:
    """Where the tokenised dataset is published: addressed by input hash and config."""
    key = sha256_text("tokenise", TOKENISE_VERSION, reviews.sha256, config.fingerprint())
    return out_root / "tokenised" / key[:16]


def open_tokenised(folder: Path) -> TokenisedResult:
    """A published tokenised folder, described by its own manifest (for tools that get the
    folder alone, such as the GPU benchmarks)."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    return TokenisedResult(
        path=folder / TOKENISED_FILE,
        sha256=manifest["content_sha256"],
        tokeniser_dir=folder,
        vocab_sha256=manifest["files"]["vocab.txt"],
        reviews_sha256=manifest["inputs"]["reviews"],
        rows=manifest["details"]["rows"],
        config=TokeniserConfig(**manifest["config"]),
        cached=True,
    )


def load_split(result: TokenisedResult, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (n, maxlen) int32 and labels (n,) int8 of one split, hash-checked."""
    require_sha256(result.path, result.sha256, "re-run the tokenise step")
    table = pq.read_table(result.path, filters=[("split", "=", split)])
    ids = table["ids"].combine_chunks()
    matrix = ids.values.to_numpy().reshape(len(ids), result.config.maxlen)
    return matrix, table["label"].to_numpy()


def load_review_ids(result: TokenisedResult, split: str) -> np.ndarray:
    """The ``review_id`` of each row of one split, in ``load_split``'s order."""
    require_sha256(result.path, result.sha256, "re-run the tokenise step")
    table = pq.read_table(result.path, columns=["review_id"], filters=[("split", "=", split)])
    return table["review_id"].to_numpy()


def _result(
    folder: Path,
    sha: str,
    files: dict[str, str],
    reviews: IngestResult,
    config: TokeniserConfig,
    cached: bool,
) -> TokenisedResult:
    return TokenisedResult(
        path=folder / TOKENISED_FILE,
        sha256=sha,
        tokeniser_dir=folder,
        vocab_sha256=files["vocab.txt"],
        reviews_sha256=reviews.sha256,
        rows=pq.read_metadata(folder / TOKENISED_FILE).num_rows,
        config=config,
        cached=cached,
    )
