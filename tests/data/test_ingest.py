"""Ingest of the committed fixture, the official layout, and every kind of bad input."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lstm_model.artifacts import sha256_file
from lstm_model.data.ingest import REVIEWS_SCHEMA, ingest_reviews, read_reviews
from lstm_model.data.sources import resolve_source
from lstm_model.errors import IngestError
from tests.helpers.tiny import FIXTURE_REVIEWS


def _ingest(source: Path, workspace: Path):  # type: ignore[no-untyped-def]
    return ingest_reviews(resolve_source(str(source)), workspace)


def test_fixture_ingests_to_the_documented_schema(ingested, fixture_members) -> None:  # type: ignore[no-untyped-def]
    table = pq.read_table(ingested.path)
    assert table.schema.equals(REVIEWS_SCHEMA, check_metadata=False)
    assert table.num_rows == ingested.rows == FIXTURE_REVIEWS
    assert ingested.counts == {"train": {"0": 104, "1": 100}, "test": {"0": 104, "1": 100}}
    for row in table.slice(0, 50).to_pylist():
        raw = fixture_members[f"aclImdb/{row['source_path']}"]
        assert row["text"] == raw.decode("utf-8")  # exactly as in the file
        split, polarity, name = row["source_path"].split("/")
        review_id, rating = name.removesuffix(".txt").split("_")
        assert (row["split"], row["review_id"], row["rating"]) == (
            split,
            int(review_id),
            int(rating),
        )
        assert row["label"] == (polarity == "pos")


def test_manifest_records_counts_hashes_and_schema(ingested, fixture_archive) -> None:  # type: ignore[no-untyped-def]
    import json

    manifest = json.loads((ingested.path.parent / "manifest.json").read_text())
    assert manifest["content_sha256"] == sha256_file(ingested.path) == ingested.sha256
    assert manifest["inputs"]["source"] == sha256_file(fixture_archive)
    assert manifest["details"]["counts"] == ingested.counts
    assert manifest["details"]["schema"]["text"] == "string"
    assert manifest["created_at"]


def test_same_source_gives_the_same_content_hash(fixture_archive: Path, tmp_path: Path) -> None:
    first = _ingest(fixture_archive, tmp_path / "a")
    second = _ingest(fixture_archive, tmp_path / "b")
    assert first.sha256 == second.sha256
    assert not first.cached and not second.cached


def test_rerun_on_unchanged_source_is_a_cache_hit(fixture_archive: Path, tmp_path: Path) -> None:
    first = _ingest(fixture_archive, tmp_path)
    written = first.path.stat().st_mtime_ns
    again = _ingest(fixture_archive, tmp_path)
    assert again.cached and again.sha256 == first.sha256
    assert again.path.stat().st_mtime_ns == written


def test_damaged_output_is_rebuilt_not_reused(fixture_archive: Path, tmp_path: Path) -> None:
    first = _ingest(fixture_archive, tmp_path)
    first.path.write_bytes(b"garbage")
    again = _ingest(fixture_archive, tmp_path)
    assert not again.cached and sha256_file(again.path) == first.sha256


def test_extracted_folder_reads_the_same_as_the_archive(
    fixture_archive: Path, tmp_path: Path
) -> None:
    with tarfile.open(fixture_archive) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    from_archive = _ingest(fixture_archive, tmp_path / "ws1")
    from_folder = _ingest(tmp_path / "unpacked", tmp_path / "ws2")
    from_inner = _ingest(tmp_path / "unpacked" / "aclImdb", tmp_path / "ws3")
    assert from_archive.sha256 == from_folder.sha256 == from_inner.sha256


def test_official_layout_with_its_extra_files_reads_the_same(
    make_archive: Callable[..., Path], fixture_archive: Path, tmp_path: Path
) -> None:
    """The official archive adds unlabelled reviews, vocab, BoW features and a README."""
    official = make_archive(
        "aclImdb_v1.tar.gz",
        add={
            "aclImdb/README": b"Large Movie Review Dataset v1.0",
            "aclImdb/imdb.vocab": b"the\nand\n",
            "aclImdb/imdbEr.txt": b"0.1\n",
            "aclImdb/train/labeledBow.feat": b"0 0:1\n",
            "aclImdb/test/labeledBow.feat": b"0 0:1\n",
            "aclImdb/train/unsupBow.feat": b"0 0:1\n",
            "aclImdb/train/urls_pos.txt": b"http://example.invalid\n",
            "aclImdb/train/urls_neg.txt": b"http://example.invalid\n",
            "aclImdb/train/urls_unsup.txt": b"http://example.invalid\n",
            "aclImdb/train/unsup/0_0.txt": b"unlabelled review, rating 0",
            "aclImdb/train/unsup/1_0.txt": b"another",
        },
        folders=("aclImdb", "aclImdb/train", "aclImdb/train/unsup", "aclImdb/test"),
    )
    assert (
        _ingest(official, tmp_path / "a").sha256 == _ingest(fixture_archive, tmp_path / "b").sha256
    )


def _assert_clean_failure(workspace: Path) -> None:
    leftovers = [p for p in workspace.rglob("*") if p.is_file()] if workspace.exists() else []
    assert leftovers == [], f"partial output left behind: {leftovers}"


FIRST_REVIEW = "aclImdb/test/neg/10135_3.txt"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"add": {FIRST_REVIEW: b"caf\xe9 latin-1"}}, r"test/neg/10135_3\.txt: not valid UTF-8"),
        ({"add": {FIRST_REVIEW: b""}}, r"test/neg/10135_3\.txt: empty review"),
        ({"add": {FIRST_REVIEW: b"  \n "}}, r"test/neg/10135_3\.txt: empty review"),
        ({"add": {"aclImdb/train/neutral/1_5.txt": b"meh"}}, r"unexpected folder train/neutral/"),
        ({"folders": ("aclImdb/extra",)}, r"extra/: unexpected folder"),
        ({"add": {"aclImdb/train/pos/7_11.txt": b"great"}}, r"rating 11 .* outside 1-10"),
        ({"add": {"aclImdb/test/neg/8_0.txt": b"awful"}}, r"rating 0 .* outside 1-10"),
        ({"add": {"aclImdb/train/pos/notes.txt": b"x"}}, r"unexpected file name"),
        ({"drop": lambda n: "/train/pos/" in n}, r"train/pos/: no reviews"),
    ],
)
def test_bad_content_is_named_and_nothing_is_written(
    make_archive: Callable[..., Path], tmp_path: Path, change: dict, message: str
) -> None:
    archive = make_archive(**change)
    workspace = tmp_path / "ws"
    with pytest.raises(IngestError, match=message):
        _ingest(archive, workspace)
    _assert_clean_failure(workspace)


def test_every_problem_is_listed_at_once(make_archive: Callable[..., Path], tmp_path: Path) -> None:
    archive = make_archive(
        add={FIRST_REVIEW: b"", "aclImdb/train/pos/7_11.txt": b"great", "aclImdb/x/y.txt": b""}
    )
    with pytest.raises(IngestError, match="3 problem") as info:
        read_reviews(archive)
    assert "empty review" in str(info.value) and "rating 11" in str(info.value)


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="not found"):
        read_reviews(tmp_path / "absent.tar.gz")


def test_corrupt_archive(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.tar.gz"
    bad.write_bytes(b"this is not a gzip file at all" * 100)
    with pytest.raises(IngestError, match=r"corrupt\.tar\.gz: corrupt or truncated archive"):
        _ingest(bad, tmp_path / "ws")
    _assert_clean_failure(tmp_path / "ws")


def test_truncated_archive(fixture_archive: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(fixture_archive.read_bytes()[: fixture_archive.stat().st_size // 2])
    with pytest.raises(IngestError, match=r"cut\.tar\.gz: corrupt or truncated archive"):
        _ingest(cut, tmp_path / "ws")
    _assert_clean_failure(tmp_path / "ws")


def test_gzip_with_bad_checksum(fixture_archive: Path, tmp_path: Path) -> None:
    raw = bytearray(fixture_archive.read_bytes())
    raw[-8] ^= 0xFF  # CRC32 in the gzip trailer
    bad = tmp_path / "crc.tar.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(IngestError, match=r"corrupt or truncated.*CRC check failed"):
        _ingest(bad, tmp_path / "ws")
    _assert_clean_failure(tmp_path / "ws")


def test_changed_parquet_is_refused_on_load(fixture_archive: Path, tmp_path: Path) -> None:
    from lstm_model.data.ingest import load_reviews
    from lstm_model.errors import ArtifactError

    result = _ingest(fixture_archive, tmp_path)
    result.path.write_bytes(result.path.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="re-run the ingest step"):
        load_reviews(result)


def test_source_is_never_modified(fixture_archive: Path, tmp_path: Path) -> None:
    before = (sha256_file(fixture_archive), fixture_archive.stat().st_mtime_ns)
    _ingest(fixture_archive, tmp_path)
    assert (sha256_file(fixture_archive), fixture_archive.stat().st_mtime_ns) == before
