"""The prediction service for real: `lstm-pipeline serve` processes (uvicorn on loopback)
answering an HTTP client, over a registry of two exported tiny models.

Only what needs a real process and socket is here; endpoints, OpenAPI, bad requests and
parity with the batch scorer are checked in-process by tests/code/test_serving_answers.py.
Two servers: one on the SavedModel with an API key and small limits (huge and chunked
bodies against the process's memory, idle and trickling sockets, the key never in the
log), one on TFLite without a key (no champion yet, promotion and rollback under
concurrent load across processes, a tampered champion, a broken pointer). Both are
stopped with SIGTERM.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from lstm_model.artifacts import atomic_write_json
from lstm_model.release.registry import Registry
from lstm_model.scoring.sequential import score_texts
from serving.config import API_KEY_ENV
from serving.exported import load_exported
from tests.helpers.serving import KEY, KEYED, serve_options, texts_to_serve
from tests.helpers.tiny import MODEL_NAME


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    registry: Path

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def base_registry(exported_registry: Path) -> Path:
    return exported_registry


@pytest.fixture(scope="module")
def texts(reviews_frame) -> list[str]:  # type: ignore[no-untyped-def]
    return texts_to_serve(reviews_frame)


def start(registry: Path, log: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    command = [str(Path(sys.executable).with_name("lstm-pipeline")), "serve", "--registry",
               str(registry), "--port", "0", *args]  # fmt: skip
    environment = {k: v for k, v in os.environ.items() if k != API_KEY_ENV} | (env or {})
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
        if found:
            return Server(found.group(1), process, log, registry)
        assert process.poll() is None, log.read_text()
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the service did not start:\n{log.read_text()}")


def stop(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean exit.
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM), server.logs()[-3000:]
    assert "Finished server process" in server.logs()


def wait_ready(server: Server, version: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = httpx.get(f"{server.url}/readyz", timeout=10)
        if ready.status_code == 200 and ready.json()["model_version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"not ready with version {version}:\n{server.logs()[-3000:]}")


# ------------------------------------------------ SavedModel, API key, small limits


@pytest.fixture(scope="module")
def keyed(base_registry: Path, tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("keyed")
    registry = home / "registry"
    shutil.copytree(base_registry, registry, symlinks=True)
    server = start(registry, home / "serve.log", *serve_options(KEYED), env={API_KEY_ENV: KEY})
    try:
        wait_ready(server, 1)
        yield server
    finally:
        stop(server)


def client(server: Server, key: str | None = KEY) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-API-Key": key} if key else {}, timeout=60)


def test_it_listens_on_loopback_by_default(keyed: Server) -> None:
    assert "Uvicorn running on http://127.0.0.1:" in keyed.logs()


def _raw_post(server: Server, headers: str, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request on a bare socket; stop sending once an answer starts to come back."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(headers.encode())
        for chunk in body_chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # answered before the body ended
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.005)
        answer = b""
        # The service closes the connection after a 413; with body bytes it never read, the
        # close arrives as a reset after its answer.
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                answer += data
        return answer


def test_huge_bodies_are_refused_without_growing_the_process(keyed: Server) -> None:
    process = psutil.Process(keyed.process.pid)
    before = process.memory_info().rss
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        "Content-Type: application/json\r\n"
    )
    # Declares 10 GB: answered from the headers alone.
    declared = _raw_post(keyed, head + "Content-Length: 10000000000\r\n\r\n", iter([]))
    assert declared.startswith(b"HTTP/1.1 413") and b"body_too_large" in declared
    # Chunked, no length given: 8 bodies that would be 64 MiB each.
    piece = b'{"text": "' + b"a" * 65_536
    for _ in range(8):
        chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(1024))
        answer = _raw_post(keyed, head + "Transfer-Encoding: chunked\r\n\r\n", chunks)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    grown = (process.memory_info().rss - before) / 2**20
    assert grown < 40, f"the service grew by {grown:.0f} MiB"
    with client(keyed) as http:  # and it still answers
        assert http.post("/v1/predict", json={"text": "still fine"}).status_code == 200


def test_the_api_key_is_required_and_never_logged(keyed: Server) -> None:
    wrong = "w-" + secrets.token_hex(16)
    with client(keyed, key=None) as http:
        missing = http.post("/v1/predict", json={"text": "a review"})
        info = http.get("/v1/model")
        health = http.get("/healthz"), http.get("/readyz")
    with client(keyed, key=wrong) as http:
        bad = http.post("/v1/predict", json={"text": "a review"})
        invalid_and_bad = http.post("/v1/predict", content=b"\xff")  # the key is checked first
    with client(keyed) as http:
        good = http.post("/v1/predict", json={"text": "a review"})
    for refused in (missing, info, bad, invalid_and_bad):
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'
        assert refused.json()["detail"][0]["type"] == "unauthorized"
    assert "missing API key" in missing.json()["detail"][0]["msg"]
    assert "wrong API key" in bad.json()["detail"][0]["msg"]
    assert [h.status_code for h in health] == [200, 200]  # probes need no key
    assert good.status_code == 200
    logs = keyed.logs()
    assert "API key required" in logs and '"POST /v1/predict HTTP/1.1" 401' in logs
    assert KEY not in logs and wrong not in logs


def _answer_until_closed(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends on ``sock`` until it closes it (or ``seconds`` pass)."""
    sock.settimeout(seconds)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionError):
        pass
    return answer


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes ``sock`` (whatever it answers first) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


def test_idle_slow_and_trickling_clients_are_cut_off_while_probes_answer(keyed: Server) -> None:
    host, port = keyed.url.removeprefix("http://").split(":")
    address = (host, int(port))
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    idle = [socket.create_connection(address, timeout=10) for _ in range(8)]
    trickling = socket.create_connection(address, timeout=10)
    trickling.sendall(b"POST /v1/pre")  # the start of a request line, never finished
    # Four requests that send their headers, then a trickle of body: every place taken.
    slow_bodies = [socket.create_connection(address, timeout=10) for _ in range(4)]
    for sock in slow_bodies:
        sock.sendall(head.encode() + b'{"text')
    time.sleep(0.5)
    try:
        with client(keyed) as http:
            probes = [http.get("/healthz") for _ in range(5)] + [http.get("/readyz")]
            busy = http.post("/v1/predict", json={"text": "a review"})
        assert [p.status_code for p in probes] == [200] * 6
        assert max(p.elapsed.total_seconds() for p in probes) < 1
        assert busy.status_code == 503 and busy.json()["detail"][0]["type"] == "busy"
        # The slow bodies are answered 408 and closed, the idle ones closed, all in time.
        for sock in slow_bodies:
            # Headers and body may arrive in separate segments: read to the close.
            answer = _answer_until_closed(sock, 10)
            assert answer.startswith(b"HTTP/1.1 408") and b"body_timeout" in answer
        assert all(_closed_within(sock, 5) for sock in [*idle, trickling])
        with client(keyed) as http:
            assert http.post("/v1/predict", json={"text": "fine"}).status_code == 200
    finally:
        for sock in [*idle, trickling, *slow_bodies]:
            sock.close()
    assert "sent no complete request headers in 2 s" in keyed.logs()


def test_a_key_sent_outside_its_header_is_refused_and_never_logged(keyed: Server) -> None:
    stray = "s-" + secrets.token_hex(16)
    with client(keyed, key=None) as http:
        in_query = http.post(f"/v1/predict?api_key={stray}&x=1", json={"text": "a review"})
        in_bearer = http.post(
            "/v1/predict", json={"text": "a"}, headers={"Authorization": f"Bearer {stray}"}
        )
        in_body = http.post("/v1/predict", json={"text": "a", "api_key": stray})
        in_path = http.post(f"/v1/predict/{stray}", json={"text": "a"})
        in_root = http.get(f"/{stray}")
    assert [r.status_code for r in (in_query, in_bearer, in_body, in_path)] == [401] * 4
    assert in_root.status_code == 404 and stray not in in_root.text
    assert all(stray not in r.text for r in (in_query, in_bearer, in_body))
    time.sleep(0.5)
    logs = keyed.logs()
    assert stray not in logs
    assert '"POST /v1/predict HTTP/1.1" 401' in logs


# ------------------------------------------- TFLite, no key: empty registry, hot switch


@pytest.fixture(scope="module")
def switching(base_registry: Path, tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A server started before any champion exists (the registry's pointer is removed)."""
    home = tmp_path_factory.mktemp("switching")
    registry = home / "registry"
    shutil.copytree(base_registry, registry, symlinks=True)
    (registry / "champion.json").unlink()
    shutil.rmtree(registry / "serving")
    args = ("--backend", "tflite", "--poll-seconds", "0.2", "--retry-refused-seconds", "1")
    server = start(registry, home / "serve.log", *args)
    try:
        yield server
    finally:
        stop(server)


def test_without_a_champion_it_is_alive_but_not_ready(
    switching: Server, texts: list[str], tmp_path: Path
) -> None:
    time.sleep(1)
    ready = httpx.get(f"{switching.url}/readyz")
    assert httpx.get(f"{switching.url}/healthz").status_code == 200
    assert ready.status_code == 503 and "no champion model" in ready.json()["reason"]
    early = httpx.post(f"{switching.url}/v1/predict", json={"text": "a review"})
    assert early.status_code == 503 and early.json()["detail"][0]["type"] == "not_ready"
    assert "Retry-After" in early.headers
    Registry(switching.registry).promote(1, MODEL_NAME)
    wait_ready(switching, 1)
    # The TFLite backend also answers like the batch scorer.
    expected = score_texts(switching.registry, texts, tmp_path / "scoring")
    got = httpx.post(f"{switching.url}/v1/predict", json={"texts": texts}, timeout=60).json()
    probabilities = np.array([p["probability"] for p in got["predictions"]])
    assert np.max(np.abs(probabilities - expected)) <= 1e-6


def test_promotion_and_rollback_switch_models_under_load(
    switching: Server, texts: list[str]
) -> None:
    wait_ready(switching, 1)
    # Each client sends its own texts: micro-batching (on here) must hand each its own answers.
    batches = [texts[3 * k : 3 * k + 3] for k in range(6)]
    expected = {
        version: load_exported(switching.registry, version, "tflite").predict(texts[:18])
        for version in (1, 2)
    }
    # The two models differ on every text by far more than the 1e-6 checked below.
    assert np.min(np.abs(expected[1] - expected[2])) > 1e-5

    stop_load = threading.Event()
    seen: list[list[tuple[int, int | None, list[float]]]] = [[] for _ in range(6)]

    def load(k: int) -> None:
        record = seen[k]
        with httpx.Client(base_url=switching.url, timeout=60) as http:
            while not stop_load.is_set():
                try:
                    response = http.post("/v1/predict", json={"texts": batches[k]})
                except httpx.HTTPError as error:
                    record.append((-1, None, [repr(error)]))  # type: ignore[list-item]
                    continue
                body = response.json() if response.status_code == 200 else {}
                record.append((
                    response.status_code,
                    body.get("model_version"),
                    [p["probability"] for p in body.get("predictions", [])],
                ))  # fmt: skip

    threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)
        Registry(switching.registry).promote(2, MODEL_NAME)
        wait_ready(switching, 2, timeout=60)
        time.sleep(1.5)
        Registry(switching.registry).rollback(MODEL_NAME)
        wait_ready(switching, 1, timeout=60)
        time.sleep(1.5)
    finally:
        stop_load.set()
        for thread in threads:
            thread.join(timeout=60)
    responses = [r for record in seen for r in record]
    assert len(responses) > 30
    assert {status for status, _, _ in responses} == {200}, [r for r in responses if r[0] != 200][
        :3
    ]
    assert {version for _, version, _ in responses} == {1, 2}
    for k, record in enumerate(seen):  # each answer is the model it names, for its texts
        for _, version, probabilities in record:
            want = expected[version][3 * k : 3 * k + 3]
            assert np.max(np.abs(np.array(probabilities) - want)) <= 1e-6
    for record in seen:  # each client saw 1, then 2, then 1 again: no flapping
        versions = [v for _, v, _ in record]
        changes = [b for a, b in itertools.pairwise(versions) if a != b]
        assert changes in ([2, 1], [2], [1], []), changes
    logs = switching.logs()
    assert "serving model version 2 (tflite), replacing version 1" in logs
    assert "serving model version 1 (tflite), replacing version 2" in logs


def test_a_tampered_champion_is_refused_and_the_previous_model_kept(switching: Server) -> None:
    wait_ready(switching, 1)
    registry = Registry(switching.registry)
    tflite = registry.path(2) / "export" / "model.tflite"
    original = tflite.read_bytes()
    tflite.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    # The pointer changes after the check a promotion makes: the service must check again.
    atomic_write_json(switching.registry / "champion.json", {"version": 2, "history": [1]})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            refused = httpx.get(f"{switching.url}/v1/model").json()["refused"]
            if refused:
                break
            time.sleep(0.2)
        assert refused["version"] == 2
        assert "export/model.tflite" in refused["reason"] and "tampered" in refused["reason"]
        # Shown to anyone: no path of this machine, no hash.
        assert str(switching.registry) not in refused["reason"]
        assert not re.search(r"[0-9a-f]{8,}", refused["reason"]), refused["reason"]
        answer = httpx.post(f"{switching.url}/v1/predict", json={"text": "a fine film"})
        assert answer.status_code == 200 and answer.json()["model_version"] == 1
        assert httpx.get(f"{switching.url}/readyz").json()["model_version"] == 1
        assert "refused champion version 2" in switching.logs()
        assert "still serving version 1" in switching.logs()
    finally:
        tflite.write_bytes(original)
    wait_ready(switching, 2, timeout=60)  # restored: taken on the next retry
    assert httpx.get(f"{switching.url}/v1/model").json()["refused"] is None


def test_a_broken_pointer_is_reported_once_and_the_model_kept(switching: Server) -> None:
    wait_ready(switching, 2)
    pointer = switching.registry / "champion.json"
    saved = pointer.read_bytes()
    _replace(pointer, b'{"version": "two"}')  # whole at once: never seen half written
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = httpx.get(f"{switching.url}/readyz")
            if ready.json()["problem"]:
                break
            time.sleep(0.2)
        time.sleep(2)  # ten more polls of the broken pointer
        body = ready.json()
        assert ready.status_code == 200 and body["model_version"] == 2
        assert "champion pointer is broken" in body["problem"]
        assert "still serving version 2" in body["problem"]
        assert str(switching.registry) not in body["problem"]
        info = httpx.get(f"{switching.url}/v1/model").json()
        assert info["problem"] == body["problem"] and info["version"] == 2
        answer = httpx.post(f"{switching.url}/v1/predict", json={"text": "a fine film"})
        assert answer.status_code == 200 and answer.json()["model_version"] == 2
        assert switching.logs().count("champion pointer is broken") == 1  # once per change
    finally:
        _replace(pointer, saved)
    deadline = time.monotonic() + 30
    while httpx.get(f"{switching.url}/readyz").json()["problem"]:
        assert time.monotonic() < deadline, "the mended pointer was not seen"
        time.sleep(0.2)


def _replace(path: Path, data: bytes) -> None:
    """Give ``path`` the content ``data`` in one step, as an atomic write does."""
    staged = path.with_name(f".{path.name}.staged")
    staged.write_bytes(data)
    os.replace(staged, path)
