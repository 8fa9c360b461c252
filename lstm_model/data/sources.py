"""Find the aclImdb data: an explicit path or URL, a local copy, or the official download."""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import sha256_file, sha256_text
from lstm_model.data.config import (
    LOCAL_SOURCE_CANDIDATES,
    OFFICIAL_ARCHIVE_URL,
    SOURCE_ENV,
    default_cache_dir,
)
from lstm_model.errors import DownloadError, SourceError

log = logging.getLogger(__name__)

_DOWNLOAD_TIMEOUT_S = 30.0


class ResolvedSource(BaseModel):
    """A local aclImdb archive or folder, ready to ingest."""

    model_config = ConfigDict(frozen=True)

    path: Path
    kind: Literal["archive", "directory"]
    origin: Literal["argument", "environment", "local", "download"]
    fingerprint: str
    """sha256 of the archive bytes, or of a folder's file names, sizes and mtimes."""


def resolve_source(
    source: str | None = None,
    *,
    cache_dir: Path | None = None,
    local_candidates: Sequence[str] = LOCAL_SOURCE_CANDIDATES,
    url: str = OFFICIAL_ARCHIVE_URL,
) -> ResolvedSource:
    """Resolve the data source, first match wins.

    1. ``source`` (a path or an http(s) URL), 2. ``$LSTM_PIPELINE_SOURCE``,
    3. the first of ``local_candidates`` that exists (relative to the working folder),
    4. ``url``, downloaded once into ``cache_dir`` and reused after.
    """
    if source:
        return _from_spec(source, origin="argument", cache_dir=cache_dir)
    if os.environ.get(SOURCE_ENV):
        return _from_spec(os.environ[SOURCE_ENV], origin="environment", cache_dir=cache_dir)
    for candidate in local_candidates:
        if Path(candidate).exists():
            log.info("data source: local copy %s", candidate)
            return _local(Path(candidate), origin="local")
    return _local(download(url, cache_dir=cache_dir), origin="download")


def download(url: str, *, cache_dir: Path | None = None) -> Path:
    """Fetch ``url`` into ``cache_dir`` once; later calls return the cached file."""
    cache_dir = cache_dir or default_cache_dir()
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    target = cache_dir / name
    if target.is_file():
        log.info("data source: cached download %s", target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{name}.part-{uuid.uuid4().hex}")
    log.info("downloading %s to %s", url, target)
    try:
        with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            expected = response.headers.get("Content-Length")
            with partial.open("wb") as handle:
                shutil.copyfileobj(response, handle, length=1 << 20)
        size = partial.stat().st_size
        if expected is not None and int(expected) != size:
            raise DownloadError(
                f"download of {url} stopped early: {size} of {expected} bytes; run again"
            )
        os.replace(partial, target)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"could not download {url}: {reason}. If this machine is offline, pass --source "
            f"PATH or set {SOURCE_ENV} to a local copy of the aclImdb archive or folder."
        ) from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


def _from_spec(spec: str, *, origin: str, cache_dir: Path | None) -> ResolvedSource:
    if urllib.parse.urlparse(spec).scheme in {"http", "https"}:
        return _local(download(spec, cache_dir=cache_dir), origin=origin)
    path = Path(spec).expanduser()
    if not path.exists():
        via = "--source" if origin == "argument" else SOURCE_ENV
        raise SourceError(f"data source not found: {spec} (given by {via})")
    return _local(path, origin=origin)


def _local(path: Path, *, origin: str) -> ResolvedSource:
    if path.is_dir():
        return ResolvedSource(
            path=path, kind="directory", origin=origin, fingerprint=_folder_fingerprint(path)
        )
    if not path.is_file():
        raise SourceError(f"data source {path} is neither a file nor a folder")
    return ResolvedSource(path=path, kind="archive", origin=origin, fingerprint=sha256_file(path))


def _folder_fingerprint(root: Path) -> str:
    """Cheap change detector for a folder: names, sizes and mtimes, not contents."""
    entries: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder, name)
            stat = path.stat()
            entries.append(f"{path.relative_to(root).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}")
    return sha256_text(*entries)
