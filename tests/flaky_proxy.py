"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3-compatible server (the tests' moto):
every ``every``-th request is answered with a 503 ``SlowDown`` or a reset connection (alternately),
never forwarded; the others are forwarded as they are. Counts what it did. Tests only."""
from __future__ import annotations

import http.client
import http.server
import socket
import struct
import threading
from urllib.parse import urlsplit

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade", "trailer"}


class FlakyProxy:
    """``with FlakyProxy("http://127.0.0.1:PORT") as proxy: proxy.url ...``; ``proxy.counts`` says how
    many requests it saw and how many it failed (``503``, ``reset``)."""

    def __init__(self, upstream: str, every: int = 5):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.every = every
        self.counts = {"requests": 0, "503": 0, "reset": 0}
        self.failed: list[str] = []  # "METHOD path" of every failed request
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _any(self):
                body = self._body()
                fault = proxy._fault(f"{self.command} {self.path}")
                if fault == "503":
                    self.send_response(503)
                    self.send_header("content-type", "application/xml")
                    self.send_header("content-length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                if fault == "reset":  # RST instead of an answer
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                up = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                    if body or self.command in ("PUT", "POST"):
                        headers["Content-Length"] = str(len(body))
                    up.request(self.command, self.path, body=body, headers=headers)
                    resp = up.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    length = resp.getheader("content-length") if self.command == "HEAD" else str(len(data))
                    self.send_header("content-length", length or "0")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    up.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _fault(self, what: str) -> str | None:
        with self._lock:
            self.counts["requests"] += 1
            n = self.counts["requests"]
            if n % self.every:
                return None
            kind = "503" if (n // self.every) % 2 else "reset"
            self.counts[kind] += 1
            self.failed.append(what)
            return kind

    def __enter__(self) -> "FlakyProxy":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
