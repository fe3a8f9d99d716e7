"""Hold many idle connections to an echo server (tests/smoke/echo_server_dump.sh).

    hold_connections.py PORT N

Opens N TCP connections to 127.0.0.1:PORT, one after another, sends a byte
on each and reads it back, then prints "held N". Each line read from stdin
("echo") makes it echo one more byte on every connection and print
"echoed N"; at the end of stdin it closes them all and exits 0. Any
failure exits 1 with a message on stderr. It raises its own soft limit of
open files to N + 100 when it can.
"""
import resource
import socket
import sys


def echo_all(socks, byte):
    for s in socks:
        s.sendall(byte)
    for i, s in enumerate(socks):
        got = s.recv(1)
        if got != byte:
            sys.exit("connection %d: got %r back, expected %r" % (i, got, byte))


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("open-file limit %d: %d connections need %d" % (hard, n, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    socks = []
    try:
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            socks.append(s)
        echo_all(socks, b"a")
        print("held %d" % len(socks), flush=True)
        for line in sys.stdin:
            echo_all(socks, b"b")
            print("echoed %d" % len(socks), flush=True)
    except OSError as e:
        sys.exit("after %d connections: %s" % (len(socks), e))
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    main()
