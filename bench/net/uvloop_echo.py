"""bench/net/uvloop_echo.py: the Python peers of the echo benchmark.

    /usr/bin/python3 uvloop_echo.py PORT              uvloop, asyncio.Protocol
    /usr/bin/python3 uvloop_echo.py PORT --streams    uvloop, asyncio streams
    /usr/bin/python3 uvloop_echo.py PORT --asyncio    the stock loop (with either)

Listens on 127.0.0.1:PORT, prints "listening on 127.0.0.1:PORT" when ready
and exits on SIGINT or SIGTERM. Written for Debian's python3-uvloop.
"""
import asyncio
import signal
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def echo_stream(reader, writer):
    try:
        while True:
            data = await reader.read(131072)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(port, streams):
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    if streams:
        server = await asyncio.start_server(echo_stream, "127.0.0.1", port,
                                            backlog=4096)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", port,
                                          backlog=4096)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await stop
    server.close()


def run():
    args = sys.argv[1:]
    if not args or not args[0].isdigit():
        sys.exit("usage: uvloop_echo.py PORT [--streams] [--asyncio]")
    port = int(args[0])
    streams = "--streams" in args
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    if "--asyncio" in args:
        asyncio.run(main(port, streams))
    else:
        import uvloop
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(main(port, streams))
        finally:
            loop.close()


if __name__ == "__main__":
    run()
