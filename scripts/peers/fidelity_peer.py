"""Drives a real peer (LiteLLM's Router in-process, or Portkey's gateway as a node server) against a mock
OpenAI-compatible upstream on 127.0.0.1, and prints what happened as JSON (sim/tests/compat_fidelity.rs compares
it with routesim's simulation of the same config).

    python fidelity_peer.py SPEC.json

SPEC: {
  "peer": "litellm" | "portkey",
  "config": the LiteLLM proxy YAML or Portkey JSON text; "{MOCK}" stands for the mock's host:port, and each
            deployment's api_base / custom_host is "http://{MOCK}/<endpoint id>/v1",
  "upstreams": {"<endpoint id>": {"status": 429, "rate": 1.0, "latency_s": 0.01}, ...}  (rate: share answered
               with `status`, the rest 200; latency before the answer),
  "requests": N, "rate": arrivals per second (Poisson, seeded), "seed": S,
  "model": the model name each request asks for (LiteLLM: its model group),
  "portkey_dir": the installed @portkey-ai/gateway (for "portkey"), "timeout_s": per request,
  "fit_in_minute_s": optional; when fewer seconds than this are left in the current UTC minute, the measured run
                     waits for the next minute to start (a run that must not straddle two calendar minutes)
}
Output: {"requests": N, "ok": successes, "final": {status: count}, "attempts": {id: {status: count}},
         "seconds": wall time, "minute_second": the second of the UTC minute at which the measured run started
         (LiteLLM keys its per-minute counters by the UTC minute: the simulation starts its clock there)}.
The run is bounded: every request ends within timeout_s (and the wait for a minute within fit_in_minute_s).

Portkey's gateway listens on every interface: run this script in a network namespace of its own
(`unshare -n sh -c 'ip link set lo up && exec python fidelity_peer.py SPEC'`).
"""

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# The mock's path for warm-up calls: answered 200 at once and not counted.
WARMUP = "_warmup"


def start_mock(upstreams, seed):
    """The mock upstream: POST /<id>/v1/chat/completions answers as `upstreams[id]` says."""
    counts = {}
    lock = threading.Lock()
    rng = random.Random(seed)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", 0))
            self.rfile.read(length)
            dep = self.path.strip("/").split("/")[0]
            spec = upstreams.get(dep)
            if dep == WARMUP:
                status = 200
            elif spec is None:
                status = 404
            else:
                with lock:
                    failing = rng.random() < spec.get("rate", 0.0)
                status = spec["status"] if failing else 200
                time.sleep(spec.get("latency_s", 0.005))
            if dep != WARMUP:
                with lock:
                    counts.setdefault(dep, {})
                    counts[dep][str(status)] = counts[dep].get(str(status), 0) + 1
            if status == 200:
                body = {
                    "id": "chatcmpl-mock",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "mock",
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
                }
            else:
                body = {"error": {"message": f"mock {status}", "type": "mock_error", "code": str(status)}}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def arrivals(n, rate, seed):
    rng = random.Random(seed + 1)
    t, out = 0.0, []
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def run_litellm(spec, mock_addr):
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import yaml

    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    cfg = yaml.safe_load(spec["config"].replace("{MOCK}", mock_addr))
    for key, value in (cfg.get("litellm_settings") or {}).items():
        setattr(litellm, key, value)
    # LiteLLM's first calls in a process are slow (lazy imports, HTTP client set-up: up to a few hundred ms),
    # and latency-based routing would keep those samples for whichever deployment served them: warm the
    # process up with direct calls to the mock, outside the Router, before the measured run.
    for _ in range(3):
        await litellm.acompletion(
            model="openai/m",
            api_base=f"http://{mock_addr}/{WARMUP}/v1",
            api_key="sk-test",
            messages=[{"role": "user", "content": "hi"}],
        )
    router = Router(model_list=cfg["model_list"], **(cfg.get("router_settings") or {}))
    final = {}
    timeout = spec.get("timeout_s", 30)

    async def one(at, start):
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        try:
            await asyncio.wait_for(
                router.acompletion(model=spec["model"], messages=[{"role": "user", "content": "hi"}]), timeout
            )
            return "200"
        except Exception as e:  # the request's final error
            return str(getattr(e, "status_code", None) or type(e).__name__)

    minute_second = start_in_minute(spec)
    start = time.monotonic()
    results = await asyncio.gather(*(one(a, start) for a in arrivals(spec["requests"], spec["rate"], spec["seed"])))
    for r in results:
        final[r] = final.get(r, 0) + 1
    return final, minute_second


def start_in_minute(spec):
    """Waits, when `fit_in_minute_s` is set and fewer seconds are left in the UTC minute, for the next minute;
    returns the second of the minute at which the measured run starts."""
    fit = spec.get("fit_in_minute_s")
    left = 60.0 - time.time() % 60.0
    if fit is not None and left < fit:
        time.sleep(left + 0.05)
    return time.time() % 60.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_portkey(spec, mock_addr):
    port = free_port()
    server = os.path.join(spec["portkey_dir"], "build", "start-server.js")
    gw = subprocess.Popen(
        ["node", server, f"--port={port}", "--headless"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except Exception:
                if time.monotonic() > deadline or gw.poll() is not None:
                    raise SystemExit("the Portkey gateway did not start")
                time.sleep(0.1)
        config = json.dumps(json.loads(spec["config"].replace("{MOCK}", mock_addr)))
        body = json.dumps({"model": spec["model"], "messages": [{"role": "user", "content": "hi"}]}).encode()
        final = {}
        lock = threading.Lock()

        def one(at, start):
            time.sleep(max(0.0, start + at - time.monotonic()))
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                data=body,
                headers={"content-type": "application/json", "x-portkey-config": config},
            )
            try:
                with urllib.request.urlopen(req, timeout=spec.get("timeout_s", 30)) as r:
                    status = str(r.status)
            except urllib.error.HTTPError as e:
                status = str(e.code)
            except Exception as e:
                status = type(e).__name__
            with lock:
                final[status] = final.get(status, 0) + 1

        minute_second = start_in_minute(spec)
        start = time.monotonic()
        threads = [
            threading.Thread(target=one, args=(a, start))
            for a in arrivals(spec["requests"], spec["rate"], spec["seed"])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return final, minute_second
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=5)
        except subprocess.TimeoutExpired:
            gw.kill()


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    server, counts = start_mock(spec["upstreams"], spec["seed"])
    mock_addr = f"127.0.0.1:{server.server_address[1]}"
    started = time.monotonic()
    if spec["peer"] == "litellm":
        final, minute_second = asyncio.run(run_litellm(spec, mock_addr))
    elif spec["peer"] == "portkey":
        final, minute_second = run_portkey(spec, mock_addr)
    else:
        raise SystemExit(f"unknown peer {spec['peer']!r}")
    out = {
        "requests": spec["requests"],
        "ok": final.get("200", 0),
        "final": final,
        "attempts": counts,
        "seconds": round(time.monotonic() - started, 3),
        "minute_second": round(minute_second, 3),
    }
    server.shutdown()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
