"""A loopback OpenAI-compatible upstream for the peer tests (issue 29): answers POST .../chat/completions with a
fixed completion, counts requests per `model` of the body, and answers the models listed in `fail` with their
HTTP status instead. Optional per-model delay (seconds) in `delay`. Serves on 127.0.0.1 only, in a thread."""
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Mock:
    def __init__(self):
        self.hits = Counter()  # model -> requests received
        self.fail = {}  # model -> HTTP status to answer
        self.delay = {}  # model -> seconds before answering
        self.lock = threading.Lock()
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self):
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                model = body.get("model", "")
                with mock.lock:
                    mock.hits[model] += 1
                    status = mock.fail.get(model)
                    delay = mock.delay.get(model, 0.0)
                if delay:
                    time.sleep(delay)
                if status:
                    out = json.dumps({"error": {"message": f"mock {status}", "type": "mock", "code": status}})
                else:
                    out = json.dumps({
                        "id": "chatcmpl-mock", "object": "chat.completion", "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "ok"}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                    })
                data = out.encode()
                self.send_response(status or 200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, fail=None, delay=None):
        with self.lock:
            self.hits = Counter()
            self.fail = dict(fail or {})
            self.delay = dict(delay or {})

    def close(self):
        self.server.shutdown()
