"""Source resolution: argument, environment, local copy, download (real HTTP on loopback)."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lstm_model.data.config import SOURCE_ENV
from lstm_model.data.sources import resolve_source
from lstm_model.errors import DownloadError, SourceError


class _Server(http.server.ThreadingHTTPServer):
    payload: bytes = b""
    requests: int = 0
    lie_about_length: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests += 1
        body = self.server.payload
        self.send_response(200)
        length = len(body) * 2 if self.server.lie_about_length else len(body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server(fixture_archive: Path) -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.payload = fixture_archive.read_bytes()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/aclImdb_v1.tar.gz"


def test_argument_wins_over_environment(
    fixture_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOURCE_ENV, str(tmp_path / "elsewhere.tar.gz"))
    resolved = resolve_source(str(fixture_archive))
    assert resolved.origin == "argument"
    assert resolved.kind == "archive"
    assert resolved.path == fixture_archive


def test_environment_variable_is_used(
    fixture_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SOURCE_ENV, str(fixture_archive))
    assert resolve_source().origin == "environment"


def test_first_existing_local_candidate(
    fixture_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b.tar.gz").write_bytes(fixture_archive.read_bytes())
    resolved = resolve_source(local_candidates=["a.tar.gz", "b.tar.gz"], url="http://unused")
    assert (resolved.origin, resolved.path) == ("local", Path("b.tar.gz"))


def test_missing_source_names_the_path_and_where_it_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SourceError, match=r"not found: .*nope\.tar\.gz \(given by --source\)"):
        resolve_source(str(tmp_path / "nope.tar.gz"))
    monkeypatch.setenv(SOURCE_ENV, str(tmp_path / "gone"))
    with pytest.raises(SourceError, match=f"given by {SOURCE_ENV}"):
        resolve_source()


def test_download_happens_once_then_the_cache_is_used(
    http_server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_archive: Path
) -> None:
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    first = resolve_source(local_candidates=[], url=_url(http_server), cache_dir=tmp_path)
    second = resolve_source(local_candidates=[], url=_url(http_server), cache_dir=tmp_path)
    assert http_server.requests == 1
    assert first.origin == second.origin == "download"
    assert first.path == second.path == tmp_path / "aclImdb_v1.tar.gz"
    assert first.path.read_bytes() == fixture_archive.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aclImdb_v1.tar.gz"]


def test_url_given_as_source_is_downloaded(http_server: _Server, tmp_path: Path) -> None:
    resolved = resolve_source(_url(http_server), cache_dir=tmp_path)
    assert resolved.origin == "argument"
    assert resolved.path.is_file()


def test_offline_gives_a_clear_error_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz"
    with pytest.raises(DownloadError, match=r"could not download .*offline.*--source"):
        resolve_source(local_candidates=[], url=url, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_short_download_is_refused_and_not_cached(http_server: _Server, tmp_path: Path) -> None:
    http_server.lie_about_length = True
    with pytest.raises(DownloadError):
        resolve_source(_url(http_server), cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_folder_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    review = tmp_path / "train" / "1_9.txt"
    review.write_text("good")
    before = resolve_source(str(tmp_path)).fingerprint
    review.write_text("better")
    assert resolve_source(str(tmp_path)).fingerprint != before
