"""Python asyncio stream clients for tests/smoke/chat_server.sh.

    chat_server_clients.py fanout PORT READERS MIB
        READERS clients join, then a talker sends MIB MiB of numbered lines
        as fast as the server takes them, while the readers read as fast as
        they can. Every reader must get every line, in order, byte for byte,
        and then the talker's leave line; nobody may be dropped.

    chat_server_clients.py stuck PORT GRACE
        A client that never reads (a 4 KiB receive buffer) sits in the room
        while a talker floods it and two others chat (a line each every
        50 ms). The one that never reads must be dropped; the talker's
        longest wait (for its writes to drain) must be about GRACE: at
        least GRACE / 2 (the kernel's buffers fill first), at most 1.25
        GRACE + 1 s; the talker must then go on (2 MiB more); the two
        chatters must get all of each other's lines and all of the
        talker's, in order, and the drop notice.

Prints one line of figures and exits 0, or says what went wrong and exits 1.
Every wait is bounded (LIMIT seconds for a whole run).
"""
import asyncio
import socket
import sys
import time

LIMIT = 40.0  # seconds: below the smoke test's 60 s
LINE = 1000  # bytes per line the talker sends, newline included


class Failure(Exception):
    pass


async def join(port, rcvbuf=0):
    """Connect, read the greeting, return (reader, writer, name)."""
    sock = None
    if rcvbuf:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        r, w = await asyncio.open_connection(sock=sock, limit=1 << 20)
    else:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    hello = (await r.readline()).decode()
    prefix = "*** you are "
    if not hello.startswith(prefix) or " other" not in hello:
        raise Failure(f"greeting {hello!r}")
    return r, w, hello[len(prefix):].rsplit(", ", 1)[0]


async def skip_until(r, line, who):
    """Read lines until this one; fail on a drop notice or the end."""
    while True:
        got = await r.readline()
        if got == line:
            return
        if not got:
            raise Failure(f"{who}: the connection ended before {line!r}")
        if b"dropped" in got and b"[" not in got[:1]:
            raise Failure(f"{who}: {got!r}")


def numbered(first, count, tag=b""):
    """count numbered lines of LINE bytes, from first on."""
    fill = b"x" * (LINE - 10 - len(tag))
    return b"".join(b"%s%08d %s\n" % (tag, i, fill) for i in range(first, first + count))


async def expect_stream(r, want, who):
    """Read exactly the bytes of want, comparing as they come."""
    off = 0
    view = memoryview(want)
    while off < len(want):
        chunk = await r.read(min(1 << 20, len(want) - off))
        if not chunk:
            raise Failure(f"{who}: the connection ended after {off} of {len(want)} bytes")
        if chunk != view[off:off + len(chunk)]:
            at = off + next(i for i in range(len(chunk)) if chunk[i] != want[off + i])
            start = want.rfind(b"\n", 0, at) + 1
            got_line = (chunk[start - off:] if start >= off else chunk).split(b"\n")[0]
            want_line = want[start:want.find(b"\n", at)]
            raise Failure(f"{who}: byte {at}: expected line {want_line[:120]!r}, "
                          f"got {got_line[:120]!r}")
        off += len(chunk)


async def fanout(port, nreaders, mib):
    readers = [await join(port) for _ in range(nreaders)]
    tr, tw, tname = await join(port)
    count = mib * 1024 * 1024 // LINE
    data = numbered(0, count)
    prefix = b"[%s] " % tname.encode()
    want = b"".join(prefix + line + b"\n" for line in data.split(b"\n")[:-1])
    want += b"*** %s left\n" % tname.encode()
    joined = b"*** %s joined\n" % tname.encode()

    async def read(i, r):
        try:
            await skip_until(r, joined, f"reader {i}")
            await expect_stream(r, want, f"reader {i}")
        except ConnectionResetError:
            raise Failure(f"reader {i}: the server reset the connection (dropped it?)")

    async def talk():
        for off in range(0, len(data), 1 << 16):
            tw.write(data[off:off + (1 << 16)])
            await tw.drain()
        tw.close()
        await tw.wait_closed()

    start = time.monotonic()
    await asyncio.gather(talk(), *(read(i, r) for i, (r, _, _) in enumerate(readers)))
    took = time.monotonic() - start
    for _, w, _ in readers:
        w.close()
    print(f"fanout: {nreaders} readers got all {count} lines ({mib} MiB) in order, "
          f"none dropped, in {took:.2f} s")


async def stuck(port, grace):
    sr, sw, sname = await join(port, rcvbuf=4096)  # never reads
    ar, aw, aname = await join(port)
    br, bw, bname = await join(port)
    tr, tw, tname = await join(port)
    dropped = b"*** %s dropped: too slow\n" % sname.encode()
    block = 64  # lines per write
    state = {"dropped_at": None, "sent": 0, "max_stall": 0.0, "sent_at_drop": 0}

    async def watch_talker():
        # The talker reads too: it must see the drop.
        await skip_until(tr, dropped, "the talker")
        state["dropped_at"] = time.monotonic()
        state["sent_at_drop"] = state["sent"]

    async def talk():
        # Until the drop, then 2 MiB more: it must not be held up for good.
        last = time.monotonic()
        after = 2 * 1024 * 1024 // LINE
        while state["dropped_at"] is None or state["sent"] < state["sent_at_drop"] + after:
            if state["sent"] * LINE > 256 * 1024 * 1024:
                raise Failure(f"the talker sent {state['sent'] * LINE >> 20} MiB and "
                              f"{sname} was not dropped")
            tw.write(numbered(state["sent"], block))
            await tw.drain()
            state["sent"] += block
            now = time.monotonic()
            state["max_stall"] = max(state["max_stall"], now - last)
            last = now
        tw.write(b"done\n")
        await tw.drain()

    chat_lines = 40

    async def chat(w, tag):
        # A line every 50 ms, through the stall and after.
        for i in range(chat_lines):
            w.write(b"%s %d\n" % (tag, i))
            await w.drain()
            await asyncio.sleep(0.05)

    async def listen(r, who, other, tag):
        # Everything the talker and the other chatter say, each in order.
        tprefix = b"[%s] " % tname.encode()
        oprefix = b"[%s] " % other.encode()
        next_t = next_o = 0
        saw_drop = talker_done = False
        while not (talker_done and next_o == chat_lines):
            line = await r.readline()
            if not line:
                raise Failure(f"{who}: the connection ended")
            if line.startswith(tprefix):
                body = line[len(tprefix):]
                if body == b"done\n":
                    talker_done = True
                    continue
                if int(body[:8]) != next_t:
                    raise Failure(f"{who}: talker's line {int(body[:8])}, expected {next_t}")
                next_t += 1
            elif line.startswith(oprefix):
                if line[len(oprefix):] != b"%s %d\n" % (tag, next_o):
                    raise Failure(f"{who}: {line!r}, expected {tag!r} {next_o}")
                next_o += 1
            elif line == dropped:
                saw_drop = True
            elif line.startswith(b"***") and not line.endswith(b" joined\n"):
                raise Failure(f"{who}: unexpected {line!r}")
        if not saw_drop:
            raise Failure(f"{who}: no line {dropped!r}")
        return next_t

    start = time.monotonic()
    results = await asyncio.gather(
        watch_talker(), talk(), chat(aw, b"a"), chat(bw, b"b"),
        listen(ar, "chatter a", bname, b"b"), listen(br, "chatter b", aname, b"a"))
    for who, n in (("chatter a", results[4]), ("chatter b", results[5])):
        if n != state["sent"]:
            raise Failure(f"{who} got {n} of the talker's {state['sent']} lines")
    # The stuck one must have been reset by the server.
    try:
        while await asyncio.wait_for(sr.read(1 << 16), 5):
            pass
    except ConnectionResetError:
        pass
    took_drop = state["dropped_at"] - start
    stall = state["max_stall"]
    if stall < grace * 0.5:
        raise Failure(f"the talker was never held up for long ({stall:.2f} s, grace {grace} s)")
    if stall > grace * 1.25 + 1:
        raise Failure(f"the talker was held up {stall:.2f} s, grace {grace} s")
    print(f"stuck: dropped after {took_drop:.2f} s of flood "
          f"({state['sent_at_drop'] * LINE >> 20} MiB sent by then), the talker's longest wait "
          f"{stall:.2f} s (grace {grace} s), then {state['sent'] * LINE >> 20} MiB in all; "
          f"the chatters got every line")
    for w in (sw, aw, bw, tw):
        w.close()


def main():
    try:
        mode, port = sys.argv[1], int(sys.argv[2])
        if mode == "fanout":
            coro = fanout(port, int(sys.argv[3]), int(sys.argv[4]))
        elif mode == "stuck":
            coro = stuck(port, float(sys.argv[3]))
        else:
            raise IndexError
    except (IndexError, ValueError):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        asyncio.run(asyncio.wait_for(coro, LIMIT))
    except Failure as e:
        print(f"{mode}: {e}", file=sys.stderr)
        return 1
    except (asyncio.TimeoutError, OSError) as e:
        print(f"{mode}: {type(e).__name__} {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
