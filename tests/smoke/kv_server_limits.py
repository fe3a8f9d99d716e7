"""Limits of examples/kv_server, driven by Python sockets (standard library
only): a helper of tests/smoke/kv_server.sh, which starts the server.

    kv_server_limits.py memory PORT PID ARGS [SANITIZED]
        one command of ARGS empty arguments: answered, the server's peak
        resident size grows by no more than 5 times what was sent (plus
        4 MiB), and comes back down once the client has gone (not checked
        when SANITIZED is 1: ASan's allocator keeps what is freed)
    kv_server_limits.py connections PORT MAX
        MAX clients are served; one more is refused with Redis's error and
        closed while the others go on; once one leaves, a new one is served
    kv_server_limits.py timeout PORT SECONDS
        an idle client is disconnected after SECONDS, one that keeps sending
        is not, and neither is one that does not read what it asked for

Every wait is bounded; a failure prints what went wrong and exits 1.
"""
import select
import socket
import sys
import time

LIMIT = 10.0  # seconds, for any one wait


def fail(msg):
    print("kv_server_limits: " + msg, file=sys.stderr)
    sys.exit(1)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
    s.settimeout(LIMIT)
    return s


def read_reply(s):
    """One line of reply (RESP2 simple reply), or b"" at the end."""
    data = b""
    while not data.endswith(b"\r\n"):
        try:
            more = s.recv(1)
        except ConnectionResetError:
            more = b""
        if not more:
            return data
        data += more
    return data


def read_to_end(s):
    """Bytes read until the peer closes (FIN or reset), and how it ended."""
    n = 0
    while True:
        try:
            more = s.recv(65536)
        except ConnectionResetError:
            return n, "reset"
        except socket.timeout:
            return n, "still open after %g s" % LIMIT
        if not more:
            return n, "closed"
        n += len(more)


def ping(s, what):
    s.sendall(b"PING\r\n")
    got = read_reply(s)
    if got != b"+PONG\r\n":
        fail("%s: PING answered %r" % (what, got))


def memory_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    fail("no %s in /proc/%d/status" % (field, pid))


def memory(port, pid, nargs, sanitized):
    rss = memory_kb(pid, "VmRSS")
    msg = b"*%d\r\n$6\r\nEXISTS\r\n" % (nargs + 1) + b"$0\r\n\r\n" * nargs
    s = connect(port)
    s.sendall(msg)
    got = read_reply(s)
    if got != b":0\r\n":
        fail("EXISTS with %d arguments answered %r" % (nargs, got))
    grown = memory_kb(pid, "VmHWM") - rss
    s.close()
    bound = 5 * len(msg) // 1024 + 4096
    print("memory: a command of %d arguments (%d KiB sent): peak resident size +%d KiB"
          " (bound %d KiB)%s" % (nargs, len(msg) // 1024, grown, bound,
                                 ", not checked: sanitized build" if sanitized else ""))
    if sanitized:
        return
    if grown > bound:
        fail("the peak resident size grew by %d KiB for %d KiB sent (bound %d KiB)"
             % (grown, len(msg) // 1024, bound))
    deadline = time.monotonic() + LIMIT
    while memory_kb(pid, "VmRSS") > rss + 4096:
        if time.monotonic() > deadline:
            fail("the resident size stayed at %d KiB (%d KiB before the command)"
                 % (memory_kb(pid, "VmRSS"), rss))
        time.sleep(0.05)


def hold(port, most):
    """most clients, each served (the server may still count some that the
    shell's earlier clients left: then try again)."""
    deadline = time.monotonic() + LIMIT
    while True:
        held = [connect(port) for _ in range(most)]
        replies = []
        for s in held:
            s.sendall(b"PING\r\n")
            replies.append(read_reply(s))
        if replies == [b"+PONG\r\n"] * most:
            return held
        for s in held:
            s.close()
        if time.monotonic() > deadline:
            fail("%d clients: PING answered %r" % (most, replies))
        time.sleep(0.1)


def connections(port, most):
    held = hold(port, most)
    extra = connect(port)
    got = read_reply(extra)
    if got != b"-ERR max number of clients reached\r\n":
        fail("client %d of %d: expected the max-clients error, got %r" % (most + 1, most, got))
    n, end = read_to_end(extra)
    if end != "closed":
        fail("the refused client: %d more bytes, then %s" % (n, end))
    extra.close()
    for i, s in enumerate(held):
        ping(s, "client %d after the refusal" % (i + 1))
    held.pop().close()
    deadline = time.monotonic() + LIMIT
    while True:  # the server sees the close soon, not at once
        s = connect(port)
        s.sendall(b"PING\r\n")
        got = read_reply(s)
        if got == b"+PONG\r\n":
            held.append(s)
            break
        s.close()
        if time.monotonic() > deadline:
            fail("a new client after one left: %r" % got)
        time.sleep(0.05)
    for s in held:
        ping(s, "a client at the end")
        s.close()
    print("connections: %d served, one more refused, a new one served once one left" % most)


def still_open(s):
    """Neither closed nor reset (nothing to read, or bytes to read)."""
    if not select.select([s], [], [], 0)[0]:
        return True
    try:
        return s.recv(1, socket.MSG_PEEK) != b""
    except ConnectionResetError:
        return False


def timeout(port, seconds):
    idle, busy, deaf = connect(port), connect(port), connect(port)
    start = time.monotonic()
    # The deaf client asks for 50 MB of replies and reads none of them.
    deaf.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$100000\r\n%s\r\n" % (b"x" * 100000)
                 + b"GET big\r\n" * 500)
    checked = False
    while time.monotonic() < start + 2 * seconds:
        ping(busy, "a client that keeps sending")
        if not checked and time.monotonic() > start + seconds / 2:
            if not still_open(idle):
                fail("the idle client was disconnected before %g s" % (seconds / 2))
            checked = True
        time.sleep(seconds / 4)
    n, end = read_to_end(idle)
    if end != "closed" or n:
        fail("the idle client, after %g s: %d bytes, then %s (expected closed)" % (2 * seconds, n, end))
    ping(busy, "a client that kept sending")
    n, end = read_to_end(deaf)
    if end.startswith("still open") or n >= 500 * 100006:
        fail("the client that did not read: %d bytes, then %s" % (n, end))
    for s in (idle, busy, deaf):
        s.close()
    print("timeout: an idle client closed after %g to %g s, a busy one kept, one that did not"
          " read %s after %d bytes" % (seconds / 2, 2 * seconds, end, n))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "memory":
        memory(port, int(sys.argv[3]), int(sys.argv[4]), len(sys.argv) > 5 and sys.argv[5] == "1")
    elif mode == "connections":
        connections(port, int(sys.argv[3]))
    elif mode == "timeout":
        timeout(port, float(sys.argv[3]))
    else:
        fail("unknown mode " + mode)


main()
