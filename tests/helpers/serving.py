"""The settings and texts shared by the in-process and the real-process service tests."""

from __future__ import annotations

import secrets
from typing import Any

from serving.config import ServingConfig

KEY = "k-" + secrets.token_hex(16)
"""The API key of the keyed service (fresh each session: the log checks look for it)."""

KEYED = ServingConfig(
    max_batch_size=16,
    max_text_chars=6000,
    max_body_bytes=262_144,
    max_concurrency=4,
    header_timeout_seconds=2,
    body_timeout_seconds=3,
    micro_batching=False,  # on, the default, in the switching service: both paths answer
)
"""The keyed service: the SavedModel, an API key, small limits and timeouts."""

ODD_TEXTS = [
    "ok",
    "Brilliant!!! 10/10 <br /><br />Would watch again.",
    "Ce film était magnifique — the best of 2009 😀",
    "\u00e9l\u00e8ve   caf\u00e9\tna\u00efve\nline",
    "worst. movie. ever.",
]


def serve_options(config: ServingConfig) -> list[str]:
    """The ``lstm-pipeline serve`` options that give ``config``'s limits and timeouts."""
    options = []
    for name in ("max_batch_size", "max_text_chars", "max_body_bytes", "max_concurrency",
                 "header_timeout_seconds", "body_timeout_seconds"):  # fmt: skip
        options += [f"--{name.replace('_', '-')}", f"{getattr(config, name):g}"]
    return [*options, "--micro-batching" if config.micro_batching else "--no-micro-batching"]


def texts_to_serve(reviews_frame: Any) -> list[str]:
    """40 test reviews within the keyed service's text limit, then the odd texts."""
    test = reviews_frame[reviews_frame["split"] == "test"]["text"]
    return [t for t in test if len(t) <= KEYED.max_text_chars][:40] + ODD_TEXTS
