#!/usr/bin/env python3
"""Drives the real Portkey gateway (issue 29) over configs that `routesim export portkey` wrote.

Usage: portkey_check.py PORTKEY_DIR < job.json   (run it inside `unshare -n` with `ip link set lo up`: the
gateway binds every interface). Starts the gateway (`build/start-server.js --port=P --headless`) and a
loopback mock upstream, then:
  accept: each config as exported (its `${NAME}` key placeholders filled with a dummy key) is sent once in
          `x-portkey-config`; reports the gateway's status and body (a rejected config is a 400 "Invalid config").
  route:  each config with every leaf target pointed at the mock (`provider: openai`, `custom_host` the mock,
          `override_params.model` the target's `name`, everything else kept) receives `n` requests with the
          given `model` and `metadata` while the mock fails the targets in `fail` (name -> HTTP status);
          reports the requests each target received (`hits`) and the statuses the client saw.
The gateway and the mock stop when the script ends; every request has a 10 s timeout.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_upstream import Mock  # noqa: E402


def fill_keys(text):
    return re.sub(r"\$\{[A-Za-z0-9_]+\}", "sk-dummy", text)


def on_mock(node, url):
    if isinstance(node, dict):
        if "targets" in node:
            node["targets"] = [on_mock(t, url) for t in node["targets"]]
        elif "provider" in node:
            node["provider"] = "openai"
            node["custom_host"] = url
            node["api_key"] = "sk-mock"
            node.setdefault("override_params", {})["model"] = node.get("name", "")
    return node


def post(port, config, model, metadata):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("x-portkey-config", json.dumps(config))
    if metadata:
        req.add_header("x-portkey-metadata", json.dumps(metadata))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    portkey_dir = sys.argv[1]
    job = json.load(sys.stdin)
    mock = Mock()
    port = free_port()
    gw = subprocess.Popen(
        ["node", os.path.join(portkey_dir, "build/start-server.js"), f"--port={port}", "--headless"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "NODE_ENV": "production"},
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                if time.time() > deadline or gw.poll() is not None:
                    sys.exit(f"the Portkey gateway did not start: {gw.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        out = {"route": []}
        # Concurrently: the real providers are unreachable in the namespace, and each such request waits for
        # the gateway's failed name lookup.
        def accept(text):
            status, body = post(port, json.loads(fill_keys(text)), "gpt-4o", None)
            return {"status": status, "body": body[:600]}

        with ThreadPoolExecutor(max_workers=16) as pool:
            out["accept"] = list(pool.map(accept, job.get("accept", [])))
        for r in job.get("route", []):
            config = on_mock(json.loads(fill_keys(r["config"])), mock.url)
            mock.reset(fail=r.get("fail"))
            statuses = {}
            for _ in range(r["n"]):
                status, _ = post(port, config, r.get("model", "gpt-4o"), r.get("metadata"))
                statuses[str(status)] = statuses.get(str(status), 0) + 1
            out["route"].append({"hits": dict(mock.hits), "statuses": statuses})
        print(json.dumps(out))
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=5)
        except subprocess.TimeoutExpired:
            gw.kill()
        mock.close()


main()
