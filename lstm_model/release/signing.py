"""Manifest signing: an HMAC-SHA256 over a version's manifest, keyed from the environment.

A manifest lists the sha256 of every file of a model version, so anyone who can write to
the registry can change a file and re-hash the manifest. With ``$LSTM_PIPELINE_SIGNING_KEY``
set where models are registered, every manifest carries a ``signature``; with it set where
models are loaded (serving, scoring), a manifest without a valid signature is refused.
The key never leaves the environment: it is not logged, stored or shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from lstm_model.errors import ArtifactError

SIGNING_KEY_ENV = "LSTM_PIPELINE_SIGNING_KEY"
SIGNATURE_FIELD = "signature"


def signing_key() -> bytes | None:
    """The key from ``$LSTM_PIPELINE_SIGNING_KEY``, or None when unset or empty."""
    raw = os.environ.get(SIGNING_KEY_ENV, "")
    return raw.encode() if raw else None


def signature(manifest: dict[str, Any], key: bytes) -> str:
    """Hex HMAC-SHA256 of the manifest's canonical JSON, its signature field left out."""
    body = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def sign(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with its signature when a key is set; unchanged (unsigned) otherwise."""
    key = signing_key()
    body = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD}
    return body if key is None else {**body, SIGNATURE_FIELD: signature(body, key)}


def verify(manifest: dict[str, Any], what: str) -> None:
    """Raise ArtifactError unless the manifest is signed with the key (when one is set)."""
    key = signing_key()
    if key is None:
        return
    given = manifest.get(SIGNATURE_FIELD)
    if not isinstance(given, str):
        raise ArtifactError(f"{what}: the manifest is not signed, and ${SIGNING_KEY_ENV} is set")
    if not hmac.compare_digest(given, signature(manifest, key)):
        raise ArtifactError(
            f"{what}: the manifest's signature does not match: it was changed after it was "
            "signed, or signed with another key"
        )
