"""Requests written byte by byte, as a client the HTTP parser must survive sends them."""

from __future__ import annotations


def post_head(headers: dict[str, str], path: str = "/orders") -> bytes:
    """A JSON POST's request line and headers, up to the blank line."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
