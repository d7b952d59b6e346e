"""A webhook receiver on loopback for the channel tests: it records every POST (path, headers, JSON body) and
answers with the statuses it is told to (500 once, then 200 …); tests wait on its arrivals, never on time."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hook:
    port: int
    statuses: list[int] = field(default_factory=list)  # answered in turn; 200 once they run out
    posts: list[dict[str, Any]] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    on_post: Callable[[dict[str, Any]], None] | None = None  # called before the answer (a test's crash)

    def wait_for(self, n: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Block until `n` posts arrived (AssertionError after `timeout`: a message that never comes)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.posts) >= n, timeout=timeout):
                raise AssertionError(f"{len(self.posts)} posts arrived, {n} expected")
            return list(self.posts)


@contextmanager
def hook_server(statuses: list[int] | None = None) -> Iterator[Hook]:
    hook: Hook | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            assert hook is not None
            size = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(size)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            status = hook.statuses.pop(0) if hook.statuses else 200
            post = {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
            with hook.arrived:
                hook.posts.append(post)
                hook.arrived.notify_all()
            if hook.on_post is not None:
                hook.on_post(post)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook = Hook(server.server_address[1], list(statuses or []))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
