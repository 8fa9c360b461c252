"""The prediction service under a bounded hostile mix, beside well-behaved clients.

Starts `lstm-pipeline serve` on loopback over the registry's champion (`make retrain`
first; default limits), then runs the same well-behaved load twice, in the same run:

- quiet: 4 clients sending one review per request, and a /healthz prober (5 per second);
- hostile: the same, while another process keeps up, until the phase ends, as many idle
  sockets as `max_concurrency` (64), 32 sockets trickling a request line a byte at a time,
  16 requests trickling their body (each holds a place until its 408), and back-to-back
  4 MB amplification bodies (`{"texts": [1,1,...]}`) and deeply nested bodies.

Quiet and hostile phases alternate for ``--rounds`` rounds. Reported (medians over the
rounds): the well-behaved clients' success rate (the worst round) and p99, /healthz p99,
and the server's peak resident memory growth over its quiet level. Targets: 100% success,
p99 at most 3x the quiet figure, growth under 100 MB. Every attack loop is bounded in
time and count and sends only to the loopback address of the service it started.
"""

from __future__ import annotations

import multiprocessing
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from benchmarks._common import start_service, wait_ready

TEXTS = [
    "A moving, beautifully acted film with a script that never talks down to you.",
    "Two hours I will never get back: wooden acting and a plot full of holes.",
    "Not bad at all, though the ending drags on for twenty minutes too long.",
    "The best thing about this movie is the soundtrack; the rest is forgettable.",
    "I laughed, I cried, and I will watch it again next week with my family.",
    "Dull. Predictable. The twist is visible from the first scene.",
]
MAX_CONCURRENCY = 64  # ServingConfig's default, which the service is started with


def main() -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    p.add_argument("--rounds", type=int, default=3, help="quiet and hostile phases, alternating")
    args = p.parse_args()

    from lstm_model.release.registry import Registry

    version = Registry(args.registry).champion()
    if version is None:
        raise SystemExit(f"no champion in {args.registry}: run `make retrain` first")
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_service(args.registry, Path(tmp) / "serve.log")
        try:
            wait_ready(url, version)
            process = psutil.Process(server.pid)
            _load(url, 5.0)  # warm up: traced functions, connection pools
            rounds = [
                (_phase(url, args.seconds, process, attack=False),
                 _phase(url, args.seconds, process, attack=True))
                for _ in range(args.rounds)
            ]  # fmt: skip
            quiet, hostile = (_median([r[k] for r in rounds]) for k in (0, 1))
            alive = httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=60)
        log = (Path(tmp) / "serve.log").read_text(errors="replace")
    print(f"champion version {version}; {args.rounds} rounds of {args.seconds:.0f} s phases "
          "(medians; success: the worst round); attacks: "
          f"{hostile['attacks']}")  # fmt: skip
    print(f"{'figure':44} {'quiet':>10} {'hostile':>10}   target")
    print(f"{'well-behaved requests':44} {quiet['requests']:>10} {hostile['requests']:>10}")
    print(f"{'well-behaved success rate':44} {quiet['success']:>10.2%} {hostile['success']:>10.2%}"
          f"   100%: {'met' if hostile['success'] == 1 else 'NOT met'}")  # fmt: skip
    ratio = hostile["p99"] / quiet["p99"]
    print(f"{'well-behaved p99 (ms)':44} {quiet['p99']:>10.1f} {hostile['p99']:>10.1f}"
          f"   <= 3x quiet: {ratio:.2f}x {'met' if ratio <= 3 else 'NOT met'}")  # fmt: skip
    hratio = hostile["health_p99"] / quiet["health_p99"]
    print(f"{'/healthz p99 (ms)':44} {quiet['health_p99']:>10.1f} {hostile['health_p99']:>10.1f}"
          f"   <= 3x quiet: {hratio:.2f}x {'met' if hratio <= 3 else 'NOT met'}")  # fmt: skip
    grown = hostile["peak_mb"] - quiet["peak_mb"]
    print(f"{'server peak RSS (MB)':44} {quiet['peak_mb']:>10.0f} {hostile['peak_mb']:>10.0f}"
          f"   growth < 100 MB: {grown:.0f} MB {'met' if grown < 100 else 'NOT met'}")  # fmt: skip
    print(f"server alive after: {alive}; connections it cut for slow headers: "
          f"{log.count('sent no complete request headers')}")  # fmt: skip


def _median(phases: list[dict]) -> dict:  # type: ignore[type-arg]
    """Each figure's median over the rounds (the attack counts summed)."""
    out = {k: statistics.median(p[k] for p in phases) for k in phases[0] if k != "attacks"}
    out["attacks"] = {}
    for phase in phases:
        for name, n in phase["attacks"].items():
            out["attacks"][name] = out["attacks"].get(name, 0) + n
    out["success"] = min(p["success"] for p in phases)  # the worst round, not the median
    return out


def _phase(url: str, seconds: float, process: psutil.Process, *, attack: bool) -> dict:  # type: ignore[type-arg]
    stop = threading.Event()
    peak = [process.memory_info().rss]

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    attacker = counts = None
    if attack:
        counts = multiprocessing.Manager().dict()
        attacker = multiprocessing.Process(target=_attack, args=(url, seconds + 2, counts))
        attacker.start()
        time.sleep(2)  # let the idle and trickling sockets pile up first
    result = _load(url, seconds)
    if attacker is not None:
        attacker.join(timeout=seconds + 30)
    stop.set()
    watcher.join()
    result["peak_mb"] = peak[0] / 2**20
    result["attacks"] = dict(counts) if counts is not None else {}
    return result


def _load(url: str, seconds: float) -> dict:  # type: ignore[type-arg]
    """4 well-behaved clients and a /healthz prober for ``seconds``."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    health: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            i = k
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    response = http.post("/v1/predict", json={"text": TEXTS[i % len(TEXTS)]})
                    ok = response.status_code == 200
                    why = f"{response.status_code} {response.text[:100]}"
                except httpx.HTTPError as error:
                    ok, why = False, repr(error)
                with lock:
                    latencies.append(time.perf_counter() - started)
                    if not ok:
                        failures.append(why)
                i += 1

    def prober() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    ok = http.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    health.append(time.perf_counter() - started)
                    if not ok:
                        failures.append("healthz failed")
                time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=prober))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        print(f"  {len(failures)} failures, e.g. {failures[0]}")
    n = len(latencies)
    return {
        "requests": n,
        "success": (n - sum(f != "healthz failed" for f in failures)) / max(n, 1),
        "p99": 1000 * float(np.percentile(latencies, 99)),
        "health_p99": 1000 * float(np.percentile(health, 99)),
    }


def _attack(url: str, seconds: float, counts: dict) -> None:  # type: ignore[type-arg]
    """The hostile mix, in its own process, for ``seconds`` (then every socket is closed)."""
    host, port = url.removeprefix("http://").split(":")
    address = (host, int(port))
    deadline = time.monotonic() + seconds
    tally: dict[str, int] = {}

    def count(name: str) -> None:
        tally[name] = tally.get(name, 0) + 1

    def connect() -> socket.socket | None:
        try:
            sock = socket.create_connection(address, timeout=5)
        except OSError:
            return None
        sock.setblocking(False)
        return sock

    head = (
        b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    idle: list[socket.socket | None] = [connect() for _ in range(MAX_CONCURRENCY)]
    trickle: list[tuple[socket.socket | None, int]] = [(connect(), 0) for _ in range(32)]
    bodies: list[socket.socket | None] = []
    for _ in range(16):
        sock = connect()
        if sock is not None:
            sock.sendall(head + b'{"text')
        bodies.append(sock)
    request_line = b"POST /v1/predict HTTP/1.1\r\n"
    amplification = b'{"texts":[' + b"1," * 1_999_990 + b"1]}"
    nested = b'{"texts":' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}"

    def heavy() -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            turn = 0
            while time.monotonic() < deadline:
                body = amplification if turn % 2 == 0 else nested
                try:
                    http.post("/v1/predict", content=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
                    count("amplification" if turn % 2 == 0 else "deep_nesting")
                except httpx.HTTPError:
                    count("heavy_error")
                turn += 1

    heavy_thread = threading.Thread(target=heavy)
    heavy_thread.start()
    while time.monotonic() < deadline:
        for k, sock in enumerate(idle):  # reopen what the server closed
            if sock is None or _closed(sock):
                if sock is not None:
                    sock.close()
                    count("idle_cut")
                idle[k] = connect()
        for k, (sock, sent) in enumerate(trickle):
            if sock is None or _closed(sock):
                if sock is not None:
                    sock.close()
                    count("trickle_cut")
                trickle[k] = (connect(), 0)
                continue
            try:
                sock.send(request_line[sent % len(request_line) : sent % len(request_line) + 1])
                trickle[k] = (sock, sent + 1)
            except OSError:
                trickle[k] = (None, 0)
        for k, sock in enumerate(bodies):
            if sock is None or _closed(sock):
                if sock is not None:
                    sock.close()
                    count("slow_body_cut")
                sock = connect()
                if sock is not None:
                    try:
                        sock.sendall(head + b'{"text')
                    except OSError:
                        sock = None
                bodies[k] = sock
            else:
                try:
                    sock.send(b"a")
                except OSError:
                    bodies[k] = None
        time.sleep(0.5)
    heavy_thread.join(timeout=60)
    for sock in [*idle, *(s for s, _ in trickle), *bodies]:
        if sock is not None:
            sock.close()
    counts.update(tally)


def _closed(sock: socket.socket) -> bool:
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return False
    except OSError:
        return True
    if data:  # an answer (408, 503): read it, the server closes next
        return b"connection: close" in data.lower() or _closed(sock)
    return True


if __name__ == "__main__":
    main()
