"""The one tokeniser: normalise, split, map to ids, pad/truncate.

Fit on the training split only, saved as ``tokenizer.json`` + ``vocab.txt``, and loaded
unchanged by training, export, batch scoring and serving. The hot path runs in Arrow's
C++ kernels (RE2 regexes, hash lookups) and NumPy; there is no per-word Python loop.

Normalisation, in order (the same RE2 patterns can be replayed by ``tf.strings``):
lower-case; ``<br />`` markup to a space; apostrophes dropped (``don't`` -> ``dont``);
every run of characters that are not letters, marks or digits to one space; split.

Ids: 0 is padding, 1 is out-of-vocabulary, 2.. are training words by descending count
(ties by word), so ``vocab_size`` counts the two reserved ids.

Long reviews are cut at the front by default (``truncating="pre"``): reviews end with
their verdict ("8/10", "avoid it"), and the last tokens are the ones an LSTM's final
state remembers best. Padding also goes at the front (``padding="pre"``) so the real
tokens sit next to the final state without needing a mask.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lstm_model.artifacts import atomic_write_bytes, atomic_write_json, sha256_file
from lstm_model.data.config import TokeniserConfig
from lstm_model.errors import ArtifactError

log = logging.getLogger(__name__)

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "[PAD]"
OOV_TOKEN = "[UNK]"
RESERVED = (PAD_TOKEN, OOV_TOKEN)

BREAK_PATTERN = r"<br\s*/?>"
APOSTROPHE_PATTERN = r"['’]"
NON_WORD_PATTERN = r"[^\p{L}\p{M}\p{N}]+"

TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
FORMAT = "lstm_model.tokeniser/1"  # a stored format name: kept across module moves
_CHUNK_ROWS = 8_192  # small enough to stay in cache, large enough to amortise kernel calls
_THREADS = min(4, os.cpu_count() or 1)  # Arrow kernels release the GIL

TextBatch = Sequence[str] | pa.Array | pa.ChunkedArray | np.ndarray


def normalise(texts: TextBatch) -> pa.Array:
    """Apply the normalisation rules; returns one normalised string per text."""
    array = _as_string_array(texts)
    array = pc.utf8_lower(array)
    array = pc.replace_substring_regex(array, BREAK_PATTERN, " ")
    array = pc.replace_substring_regex(array, APOSTROPHE_PATTERN, "")
    array = pc.replace_substring_regex(array, NON_WORD_PATTERN, " ")
    return pc.utf8_trim_whitespace(array)


def split_tokens(texts: TextBatch) -> tuple[pa.Array, np.ndarray]:
    """Tokens of all texts flattened, and the index of the text each token came from."""
    lists = pc.split_pattern(normalise(texts), " ")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    keep = pc.not_equal(flat, "")  # an empty text splits into one empty token
    return flat.filter(keep), parents.filter(keep).to_numpy()


def split_words(texts: TextBatch) -> list[list[str]]:
    """Tokens of each text, as Python lists (for inspection; not the hot path)."""
    flat, parents = split_tokens(texts)
    counts = np.bincount(parents, minlength=len(_as_string_array(texts)))
    words = flat.to_pylist()
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return [words[bounds[i] : bounds[i + 1]] for i in range(len(counts))]


class Tokeniser:
    """Maps review texts to padded rows of token ids with a fixed vocabulary."""

    def __init__(self, vocabulary: Sequence[str], config: TokeniserConfig) -> None:
        if tuple(vocabulary[:2]) != RESERVED:
            raise ValueError(f"vocabulary must start with {RESERVED}, got {vocabulary[:2]}")
        if len(vocabulary) > config.vocab_size:
            raise ValueError(
                f"vocabulary has {len(vocabulary)} entries, more than vocab_size "
                f"{config.vocab_size}"
            )
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("vocabulary has duplicate entries")
        self.vocabulary: tuple[str, ...] = tuple(vocabulary)
        self.config = config
        self._words = pa.array(self.vocabulary[2:], pa.string())

    @property
    def maxlen(self) -> int:
        return self.config.maxlen

    @property
    def vocab_size(self) -> int:
        """Size of the id space (the Embedding layer's input_dim)."""
        return self.config.vocab_size

    @classmethod
    def fit(cls, texts: TextBatch | Iterable[TextBatch], config: TokeniserConfig) -> Tokeniser:
        """Build the vocabulary from ``texts`` (the training split only), counting in chunks."""
        with ThreadPoolExecutor(_THREADS) as pool:
            partial = list(pool.map(_count_words, _chunks(texts)))
        if not partial:
            raise ValueError("cannot fit a tokeniser on no texts")
        totals = (
            pa.concat_tables(partial)
            .group_by("word")
            .aggregate([("n", "sum")])
            .sort_by([("n_sum", "descending"), ("word", "ascending")])
        )
        words = totals["word"].slice(0, config.vocab_size - len(RESERVED)).to_pylist()
        log.info(
            "tokeniser: %d distinct words in training texts, keeping %d",
            totals.num_rows,
            len(words),
        )
        return cls([*RESERVED, *words], config)

    def encode(self, texts: TextBatch) -> np.ndarray:
        """Token ids, shape (len(texts), maxlen), int32, padded and truncated per config."""
        return self.encode_with_lengths(texts)[0]

    def encode_with_lengths(self, texts: TextBatch) -> tuple[np.ndarray, np.ndarray]:
        """Token ids as ``encode`` does, and each text's token count before truncation."""
        array = _as_string_array(texts)
        out = np.zeros((len(array), self.maxlen), dtype=np.int32)
        lengths = np.zeros(len(array), dtype=np.int32)

        def encode_chunk(start: int) -> None:
            chunk = array.slice(start, _CHUNK_ROWS)
            flat, parents = split_tokens(chunk)
            ids = pc.index_in(flat, value_set=self._words)
            ids = pc.fill_null(pc.add(ids, len(RESERVED)), OOV_ID)
            counts = np.bincount(parents, minlength=len(chunk))
            lengths[start : start + len(chunk)] = counts
            self._pad_into(out[start : start + len(chunk)], ids.to_numpy(), counts)

        # Each chunk writes only its own rows of ``out``, so the threads never overlap.
        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(encode_chunk, range(0, len(array), _CHUNK_ROWS)))
        return out, lengths

    def _pad_into(self, out: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> None:
        maxlen = self.maxlen
        kept = np.minimum(lengths, maxlen)
        starts = np.cumsum(lengths) - lengths
        src = starts + lengths - kept if self.config.truncating == "pre" else starts
        dst = maxlen - kept if self.config.padding == "pre" else np.zeros_like(kept)
        rows = np.repeat(np.arange(len(lengths)), kept)
        within = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
        out[rows, dst[rows] + within] = ids[src[rows] + within]

    def save(self, folder: Path) -> str:
        """Write ``tokenizer.json`` and ``vocab.txt`` into ``folder``; return the vocab sha256."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / VOCAB_FILE, ("\n".join(self.vocabulary) + "\n").encode())
        vocab_sha = sha256_file(folder / VOCAB_FILE)
        atomic_write_json(folder / TOKENIZER_FILE, self._describe(vocab_sha))
        return vocab_sha

    @classmethod
    def load(cls, folder: Path) -> Tokeniser:
        """Load a saved tokeniser, refusing a vocabulary whose hash does not match."""
        try:
            meta = json.loads((folder / TOKENIZER_FILE).read_text())
        except FileNotFoundError as exc:
            raise ArtifactError(f"{folder}: no {TOKENIZER_FILE}") from exc
        if meta.get("format") != FORMAT:
            raise ArtifactError(f"{folder / TOKENIZER_FILE}: unknown format {meta.get('format')}")
        vocab_path = folder / meta["vocab_file"]
        actual = sha256_file(vocab_path)
        if actual != meta["vocab_sha256"]:
            raise ArtifactError(
                f"{vocab_path}: sha256 {actual[:12]}… does not match {meta['vocab_sha256'][:12]}… "
                f"in {TOKENIZER_FILE}; the vocabulary was changed"
            )
        vocabulary = vocab_path.read_text(encoding="utf-8").split("\n")[:-1]
        return cls(vocabulary, TokeniserConfig.model_validate(meta["config"]))

    def _describe(self, vocab_sha: str) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "config": self.config.model_dump(mode="json"),
            "vocab_file": VOCAB_FILE,
            "vocab_sha256": vocab_sha,
            "vocab_entries": len(self.vocabulary),
            "reserved": {PAD_TOKEN: PAD_ID, OOV_TOKEN: OOV_ID},
            "normalisation": {
                "lower": True,
                "break_pattern": BREAK_PATTERN,
                "apostrophe_pattern": APOSTROPHE_PATTERN,
                "non_word_pattern": NON_WORD_PATTERN,
            },
        }


def _as_string_array(texts: Any) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts) if not isinstance(texts, list) else texts, pa.string())
    if pa.types.is_large_string(texts.type) or pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.string())
    if not pa.types.is_string(texts.type):
        raise TypeError(f"texts must be strings, got Arrow type {texts.type}")
    if texts.null_count:
        first = pc.index(pc.is_null(texts), True).as_py()
        raise ValueError(f"texts contain {texts.null_count} null value(s), first at {first}")
    return texts


def _count_words(chunk: pa.Array) -> pa.Table:
    flat, _ = split_tokens(chunk)
    counts = pc.value_counts(flat)
    return pa.table({"word": counts.field("values"), "n": counts.field("counts")})


def _chunks(texts: Any) -> Iterable[pa.Array]:
    if isinstance(texts, (pa.Array, pa.ChunkedArray, np.ndarray, list, tuple)):
        array = _as_string_array(texts)
        for start in range(0, len(array), _CHUNK_ROWS):
            yield array.slice(start, _CHUNK_ROWS)
    else:
        for batch in texts:
            yield from _chunks(batch)
