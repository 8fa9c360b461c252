"""Run the prediction service under uvicorn (``lstm-pipeline serve``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lstm_model.config import API_KEY_ENV, ServingConfig

log = logging.getLogger(__name__)


def serve(registry_root: Path, config: ServingConfig, log_level: str = "info") -> None:
    """Serve the champion of ``registry_root`` until SIGINT/SIGTERM (in-flight requests end)."""
    import uvicorn

    from serving.app import create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    api_key = os.environ.get(API_KEY_ENV) or None
    log.info(
        "serving the champion of %s with the %s backend; API key %s",
        registry_root,
        config.backend,
        f"required (from ${API_KEY_ENV})" if api_key else f"not required (${API_KEY_ENV} unset)",
    )
    app = create_app(registry_root, config, api_key)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        limit_concurrency=config.max_concurrency,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=30,
        log_level=log_level,
    )
