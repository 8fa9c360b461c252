"""What every command shares: the options that are no config field, and error handling."""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from flows.config import (
    CACHE_ENV,
    LOCAL_SOURCE_CANDIDATES,
    OFFICIAL_ARCHIVE_URL,
    SOURCE_ENV,
    WORKSPACE_ENV,
    default_workspace,
)

T = TypeVar("T")
# Prefect's basic authentication: what clients send, and what the server takes.
AUTH_ENV = "PREFECT_API_AUTH_STRING"
SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"

SOURCE_HELP = (
    f"aclImdb .tar.gz, folder, or http(s) URL. If omitted: ${SOURCE_ENV}, else a local "
    "copy, else the official download (see the source resolution order below)."
)
SOURCE_ORDER = (
    "Source resolution order, first match wins:\n\n"
    f"1. --source;\n\n2. ${SOURCE_ENV};\n\n"
    "3. the first of these that exists, relative to the working folder: "
    + "; ".join(LOCAL_SOURCE_CANDIDATES)
    + f";\n\n4. the official archive, downloaded once into ${CACHE_ENV} "
    f"(default ~/.cache/lstm-pipeline) and reused after:\n\n{OFFICIAL_ARCHIVE_URL}"
)
WORKSPACE_HELP = f"Folder for all artifacts. Default: ${WORKSPACE_ENV}, else ./artifacts."
REGISTRY_HELP = "Model registry folder. Default: <workspace>/registry."

SourceOption = Annotated[str | None, typer.Option(help=SOURCE_HELP)]
WorkspaceOption = Annotated[Path | None, typer.Option(help=WORKSPACE_HELP)]
RegistryOption = Annotated[Path | None, typer.Option(help=REGISTRY_HELP)]


def registry_root(workspace: Path | None, registry: Path | None) -> Path:
    """``--registry``, else ``<workspace>/registry``."""
    return registry or (workspace or default_workspace()) / "registry"


def run(call: Callable[[], T]) -> T:
    """Run ``call``; turn the errors a user can fix into one clear message and exit 1."""
    import httpx

    from data_contracts import ContractViolation
    from lstm_model.errors import PipelineError

    try:
        return call()
    except (PipelineError, ContractViolation) as exc:
        fail(str(exc))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 401:
            raise
        fail(unauthorised())


def run_flow(entrypoint: str, **parameters: Any) -> Any:
    """Run the flow at ``module:function`` locally with ``parameters``, its errors turned
    into one clear message (``run``). Prefect's temporary server starts while the flow's
    modules import."""
    server_ready = prepare_prefect()
    module, name = entrypoint.split(":")
    flow = getattr(importlib.import_module(module), name)
    server_ready()
    return run(lambda: flow(**parameters))


def check_server() -> tuple[str, str | None]:
    """The Prefect server this process reports to ($PREFECT_API_URL), and why it cannot,
    if it cannot. Asks with Prefect's own client, so its TLS and sign-in settings apply."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        return "none (PREFECT_API_URL unset): flows run on a temporary local server", None
    try:
        with get_client(sync_client=True) as client:
            version = client.api_version()  # behind the server's sign-in, when it has one
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 401:
            return url, unauthorised()
        return url, f"the Prefect server at {url} answered {exc.response.status_code}"
    except httpx.HTTPError as exc:
        return url, f"the Prefect server at {url} (PREFECT_API_URL) cannot be reached: {exc}"
    sent = "credentials from PREFECT_API_AUTH_STRING" if _auth_set() else "no credentials"
    return f"{url}: Prefect {version}, answers with {sent}", None


def unauthorised() -> str:
    """What to do when the Prefect server ($PREFECT_API_URL) refuses this process."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if _auth_set():
        return (
            f"the Prefect server at {url} refused the credentials in {AUTH_ENV}: set it "
            f"to the user:password the server was started with ({SERVER_AUTH_ENV} there)"
        )
    return (
        f"the Prefect server at {url} requires authentication: set {AUTH_ENV} to the "
        "user:password it was started with"
    )


def _auth_set() -> bool:
    """Whether Prefect's settings (the environment, a .env file, the profile) hold
    credentials for the server."""
    from prefect.settings import get_current_settings

    auth = get_current_settings().api.auth_string
    return bool(auth and auth.get_secret_value())


def fail(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def prepare_prefect() -> Callable[[], None]:
    """Settings for running flows locally, set before Prefect is imported.

    With no Prefect API configured, Prefect's own temporary server is started here, in the
    background, so that its start-up overlaps the import of the flow's modules. Returns a
    call that waits until it answers; if it failed to start, the flow starts it again and
    reports the error as Prefect does.
    """
    # This pipeline runs offline too: the local server must not try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A busy 2-core machine can take longer than Prefect's default to start the local server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The library logs with `logging`; route it through Prefect's handlers so it shows
    # on the console, in the run logs and in the UI.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "lstm_model,data_contracts")
    for name in ("lstm_model", "data_contracts"):
        logging.getLogger(name).setLevel(logging.INFO)
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return lambda: None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()

    def start() -> None:
        try:
            server.start()
        except Exception:  # the flow starts it again and reports the error as Prefect does
            logging.getLogger(__name__).exception("Prefect's temporary server did not start")
            server.stop()

    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    return starting.join
