"""Raw HTTP/1.1 over a socket, for attacks an HTTP client library would not send: a declared body
that never comes, a body streamed until the server stops it, a forged Host header."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Answer:
    status: int
    body: bytes
    sent: int
    """Body bytes the server accepted before it answered (or closed)."""

    def json(self) -> Any:
        return json.loads(self.body)


def _head(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket, sent: int) -> Answer:
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass  # a server closing on an unread body resets; what arrived before counts
    if b"\r\n\r\n" not in data:
        raise AssertionError(f"connection closed without an answer: {data!r}")
    head, _, body = data.partition(b"\r\n\r\n")
    return Answer(int(head.split(b" ", 2)[1]), body[: _length(data)], sent)


def _length(data: bytes) -> int:
    head = data.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def declare_body(
    port: int, method: str, path: str, declared: int, headers: dict[str, str], timeout: float = 20
) -> Answer:
    """Send only the headers of a request declaring a `declared`-byte body, then wait for the answer.

    A server that reads the body before answering never answers: the socket times out."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_head(method, path, port, {**headers, "Content-Length": str(declared)}))
        return _read_answer(sock, 0)


def stream_body(
    port: int, method: str, path: str, total: int, headers: dict[str, str], chunk: int = 256 * 1024, timeout: float = 60
) -> Answer:
    """Stream up to `total` bytes as a chunked body (no Content-Length), stopping when the server
    answers or closes; then read its answer."""
    sent = 0
    piece = b"x" * chunk
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_head(method, path, port, {**headers, "Transfer-Encoding": "chunked"}))
        try:
            while sent < total:
                sock.sendall(f"{chunk:x}\r\n".encode() + piece + b"\r\n")
                sent += chunk
                sock.setblocking(False)
                try:
                    if sock.recv(1, socket.MSG_PEEK):
                        break  # the server has answered
                except BlockingIOError:
                    pass
                finally:
                    sock.setblocking(True)
                    sock.settimeout(timeout)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        return _read_answer(sock, sent)


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")
