"""Clients for tests/smoke/http_server.sh: the limits of examples/http_server
that are times or counts, driven with Python's asyncio streams (standard
library only).

    python3 http_server_limits.py timeouts PORT BIGPATH BIGSIZE
        for a server started with --header-timeout 1 --keepalive-timeout 1.5
        --io-timeout 1: slow heads (a byte every 0.2 s) get 408 and are
        closed about 1 s after their first byte, also on a keep-alive
        connection; a connection that sends nothing is closed after 1 s, an
        idle keep-alive one after 1.5 s, both without a byte; a slow body
        is cut 1 s after its answer; a client that keeps sending after
        "Connection: close" is cut 2 s after its answer (the linger); a
        request answered meanwhile on another connection comes at once; a
        client that does not read BIGPATH (BIGSIZE bytes) is dropped after
        1 s.
    python3 http_server_limits.py maxconn PORT N
        for a server started with --max-connections N: N connections are
        served, one more gets 503 and is closed, the N go on undisturbed,
        and once one of them is gone a new one is served again.

Prints one line per check passed; on a failure, "FAIL: ..." and exit 1.
Every wait is bounded.
"""
import asyncio
import socket
import sys
import time

HOST = "127.0.0.1"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


async def connect(port, rcvbuf=None):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (HOST, port)), 5)
    return await asyncio.open_connection(sock=sock)


async def read_to_eof(reader, limit):
    """Everything until the end of the connection, within limit seconds:
    (bytes, seconds it took); a reset counts as the end."""
    start = time.monotonic()
    data = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), limit - (time.monotonic() - start))
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except asyncio.TimeoutError:
        return data, None
    return data, time.monotonic() - start


async def get(reader, writer, path="/"):
    """One keep-alive GET: (status line, body)."""
    writer.write(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await asyncio.wait_for(reader.readexactly(length), 5)
    return head.split(b"\r\n")[0].decode(), body


def closed_within(what, took, lo, hi):
    if took is None:
        fail("%s: still open after %.1f s" % (what, hi))
    if not lo <= took <= hi:
        fail("%s: closed after %.2f s, expected between %.1f and %.1f s" % (what, took, lo, hi))


async def slow_head(port, keep_alive_first):
    """Send a request head a byte every 0.2 s (on a connection that first
    had a request answered, if keep_alive_first): 408 about 1 s after its
    first byte, then the end."""
    reader, writer = await connect(port)
    if keep_alive_first:
        status, _ = await get(reader, writer)
        if status != "HTTP/1.1 200 OK":
            fail("keep-alive request before the slow head: " + status)
    head = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"z" * 40 + b"\r\n\r\n"
    start = time.monotonic()

    async def drip():
        try:
            for i in range(len(head)):
                writer.write(head[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, OSError):
            pass

    dripper = asyncio.ensure_future(drip())
    data, _ = await read_to_eof(reader, 4)
    took = time.monotonic() - start
    dripper.cancel()
    writer.close()
    what = "a slow head%s" % (" after a keep-alive request" if keep_alive_first else "")
    if took >= 4:
        fail("%s: still open after 4 s" % what)
    lines = data.split(b"\r\n")
    if lines[0] != b"HTTP/1.1 408 Request Timeout" or b"Connection: close" not in lines:
        fail("%s: answered %r" % (what, data[:200]))
    closed_within(what, took, 0.9, 2.5)
    return "%s: 408 and closed after %.2f s" % (what, took)


async def silent(port, keep_alive_first):
    """Send nothing (after one request, if keep_alive_first): closed after
    the header timeout (1 s) or the keep-alive timeout (1.5 s), silently."""
    reader, writer = await connect(port)
    what, lo, hi = "a connection that sends nothing", 0.9, 2.5
    if keep_alive_first:
        await get(reader, writer)
        what, lo, hi = "an idle keep-alive connection", 1.4, 3.0
    data, took = await read_to_eof(reader, hi + 1)
    writer.close()
    if data:
        fail("%s: got %r" % (what, data[:200]))
    closed_within(what, took, lo, hi)
    return "%s: closed after %.2f s without a byte" % (what, took)


async def slow_body(port):
    """A request whose body comes a byte every 0.2 s: answered, then closed
    about 1 s (the header timeout) later."""
    reader, writer = await connect(port)
    writer.write(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    if not head.startswith(b"HTTP/1.1 405 "):
        fail("a slow body: answered %r" % head[:100])
    start = time.monotonic()

    async def drip():
        try:
            for _ in range(30):
                writer.write(b"b")
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, OSError):
            pass

    dripper = asyncio.ensure_future(drip())
    await read_to_eof(reader, 4)
    took = time.monotonic() - start
    dripper.cancel()
    writer.close()
    closed_within("a slow body", took if took < 4 else None, 0.9, 2.5)
    return "a slow body: closed %.2f s after the answer" % took


async def lingering(port):
    """After "Connection: close" the server reads and drops what comes for
    2 s (LINGER_TIMEOUT), then closes: a client that keeps sending meets a
    reset about 2 s after the answer."""
    reader, writer = await connect(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data, took = await read_to_eof(reader, 5)
    if not data.startswith(b"HTTP/1.1 200 OK") or took is None:
        fail("lingering: the answer %r (ended: %s)" % (data[:60], took is not None))
    start = time.monotonic()
    try:
        while time.monotonic() - start < 5:
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.1)
    except (ConnectionError, OSError):
        pass
    took = time.monotonic() - start
    writer.close()
    closed_within("a client that keeps sending after Connection: close", took if took < 5 else None,
                  1.9, 3.0)
    return "a client that keeps sending after Connection: close: reset %.2f s on" % took


async def meanwhile(port):
    """A request while the slow ones wait: answered at once."""
    await asyncio.sleep(0.5)
    start = time.monotonic()
    reader, writer = await connect(port)
    status, body = await get(reader, writer)
    took = time.monotonic() - start
    writer.close()
    if status != "HTTP/1.1 200 OK" or body != b"Hello, World!" or took > 0.5:
        fail("a request beside the slow clients: %s %r after %.2f s" % (status, body, took))
    return "a request beside the slow clients: answered in %.3f s" % took


async def not_reading(port, path, size):
    """GET a big file and read nothing: the server gives up after the io
    timeout (1 s); what it had sent then arrives, then the end."""
    reader, writer = await connect(port, rcvbuf=65536)
    writer.write(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    await asyncio.sleep(2)
    data, took = await read_to_eof(reader, 10)
    writer.close()
    if took is None:
        fail("a client that does not read: still open 12 s on")
    if not data.startswith(b"HTTP/1.1 200 OK") or len(data) >= size:
        fail("a client that does not read: got %d bytes of %d, %r" % (len(data), size, data[:40]))
    return "a client that does not read: dropped, %d of %d bytes sent" % (len(data), size)


async def timeouts(port, path, size):
    results = await asyncio.gather(
        *[slow_head(port, False) for _ in range(4)], slow_head(port, True),
        silent(port, False), silent(port, True), slow_body(port), lingering(port), meanwhile(port),
        not_reading(port, path, size))
    for r in results:
        print(r)


async def maxconn(port, n):
    held = []
    for i in range(n):
        reader, writer = await connect(port)
        status, _ = await get(reader, writer)
        if status != "HTTP/1.1 200 OK":
            fail("connection %d of %d: %s" % (i + 1, n, status))
        held.append((reader, writer))
    reader, writer = await connect(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data, took = await read_to_eof(reader, 5)
    writer.close()
    lines = data.split(b"\r\n")
    if lines[0] != b"HTTP/1.1 503 Service Unavailable" or b"Connection: close" not in lines or took is None:
        fail("connection %d of %d: %r (closed: %s)" % (n + 1, n, data[:200], took is not None))
    print("connection %d over --max-connections %d: 503 and closed" % (n + 1, n))
    for i, (reader, writer) in enumerate(held):
        status, _ = await get(reader, writer)
        if status != "HTTP/1.1 200 OK":
            fail("held connection %d after the 503: %s" % (i + 1, status))
    print("the %d connections within the limit: still served" % n)
    held[0][1].close()
    for attempt in range(50):  # the server notices the close soon after
        reader, writer = await connect(port)
        status, _ = await get(reader, writer)
        writer.close()
        if status == "HTTP/1.1 200 OK":
            break
        await asyncio.sleep(0.1)
    else:
        fail("a new connection once one of the %d was gone: %s" % (n, status))
    print("once one of them was gone: a new connection served")
    for _, writer in held[1:]:
        writer.close()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "timeouts":
        asyncio.run(timeouts(port, sys.argv[3], int(sys.argv[4])))
    elif mode == "maxconn":
        asyncio.run(maxconn(port, int(sys.argv[3])))
    else:
        fail("unknown mode " + mode)


if __name__ == "__main__":
    main()
