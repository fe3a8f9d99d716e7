#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_corpus.py

The seeds are in the tree; this script says what each one is, and makes them
again after a change of a target's input layout (see the comment at the top
of each tests/fuzz/fuzz_*.c). Not used by the build.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- fuzz_stream ------------------------------------------------------------
# [limit][flags][repeat][nops] ops... [nchunks] chunks... payload
READ, READEXACTLY, READLINE, READUNTIL, PEEK_CONSUME, FILL, SET_LIMIT, AT_EOF, EXPIRED, YIELD = range(10)
L_DEFAULT = 200          # limits[0]: 0, the default 64 KiB
L_4096, L_16384, L_65537 = 205, 210, 217


def limit_byte(n):
    """The selector of a limit of n bytes, 1 to 200."""
    assert 1 <= n <= 200
    return n - 1


def stream(limit, ops, payload, chunks=(), flags=0, repeat=0):
    body = bytearray([limit, flags, repeat, len(ops)])
    for op in ops:
        body += bytes(op)
    body.append(len(chunks))
    body += bytes(chunks)
    return bytes(body) + payload


def until(sep, cap=0xff, arg_extra=0):
    """A readuntil of sep (1 to 4 bytes), capacity byte cap."""
    return [READUNTIL, (len(sep) - 1) | arg_extra] + list(sep) + [cap]


STREAM = {
    "readline-lines": stream(L_DEFAULT, [[READLINE, 0x7f]] * 4 + [[AT_EOF, 0]],
                             b"one\ntwo\nthree\nno newline at the end"),
    "readline-chunks-of-3": stream(L_DEFAULT, [[READLINE, 0x7f]] * 3,
                                   b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", chunks=[2, 0, 6], flags=0x04),
    "readuntil-crlf": stream(L_DEFAULT, [until(b"\r\n")] * 3, b"a\r\nbc\r\n\r\ndef", chunks=[0]),
    "readuntil-overlapping-sep": stream(L_DEFAULT, [until(b"aab"), until(b"aab")], b"aaabxaaaab",
                                        chunks=[1]),
    "readuntil-sep-4": stream(L_DEFAULT, [until(b"\r\n\r\n", 0x40)] * 2,
                              b"HEAD / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nA: b\r\n\r\n", chunks=[4, 9]),
    "readuntil-cap-too-small": stream(L_DEFAULT, [until(b"\n", 3), [READLINE, 0x20]], b"abcdef\nxyz\n"),
    "readline-over-limit": stream(limit_byte(8), [[READLINE, 0x7f], [PEEK_CONSUME, 5],
                                                  [READLINE, 0x7f], [READ, 0x20]],
                                  b"0123456789abcdef\nend\n", chunks=[3]),
    "readexactly-short-at-eof": stream(L_DEFAULT, [[READEXACTLY, 4], [READEXACTLY, 10], [AT_EOF, 0]],
                                       b"abcdefg"),
    "readexactly-past-limit": stream(limit_byte(16), [[READEXACTLY, 100], [READ, 7]],
                                     bytes(range(32, 127)) * 2, chunks=[5, 11]),
    "readexactly-expired": stream(L_DEFAULT, [[FILL, 0], [EXPIRED, 0], [READEXACTLY, 60], [EXPIRED, 0],
                                              [READEXACTLY, 5], [READEXACTLY, 60]],
                                  bytes(range(48, 123)) * 2, chunks=[10], flags=0x0c),
    "read-expired-then-line": stream(L_DEFAULT, [[EXPIRED, 0], [READ, 10], [YIELD, 0], [EXPIRED, 0],
                                                 [READ, 2], [EXPIRED, 0],
                                                 [READLINE, 0x40], [READLINE, 0x40]],
                                     b"first line\nsecond\n", chunks=[4], flags=0x04),
    "peek-consume-fill": stream(L_DEFAULT, [[FILL, 0], [PEEK_CONSUME, 3], [FILL, 0], [PEEK_CONSUME, 200],
                                            [PEEK_CONSUME, 2], [YIELD, 0], [FILL, 0]],
                                b"0123456789" * 3, chunks=[5, 8]),
    "fill-to-limit": stream(limit_byte(10), [[FILL, 0]] * 5 + [[SET_LIMIT, 3], [SET_LIMIT, 40],
                                                              [FILL, 0], [READ, 50]],
                            b"abcdefghijklmnopqrstuvwxyz", chunks=[4]),
    "set-limit-after-open": stream(limit_byte(12), [[READLINE, 0x7f], [SET_LIMIT, 100], [READLINE, 0x7f]],
                                   b"a line longer than twelve\nshort\n", flags=0x01),
    "pipe-yields": stream(L_DEFAULT, [[READLINE, 0x7f], [READEXACTLY, 5], [READ, 0x7f], [AT_EOF, 0]],
                          b"over a pipe\nfive!and the rest", chunks=[3, 1, 7], flags=0x02 | 0x0c),
    "direct-read-4096": stream(L_4096, [[READ, 0x90], [READEXACTLY, 0x90], [READLINE, 0x80 | 20]],
                               b"0123456789abcdef" * 16 + b"\n", chunks=[0x80 | 3], flags=0x10, repeat=40),
    "repeat-buffer-16384": stream(L_16384, [until(b"$$"), [FILL, 0], [FILL, 0], [READEXACTLY, 0x7f],
                                            until(b"\n", 0xff)],
                                  b"x" * 255 + b"\n", chunks=[0x80 | 20, 0x80 | 13], flags=0x10, repeat=99),
    "large-limit-65537": stream(L_65537, [[FILL, 0]] * 6 + [until(b"!"), [READ, 0xff]],
                                b"y" * 1023 + b"!", chunks=[0x80 | 127], flags=0x10, repeat=80),
    "zero-lengths": stream(L_DEFAULT, [[READ, 0], [READEXACTLY, 0], [READLINE, 0], [PEEK_CONSUME, 0],
                                       until(b"\n", 0)], b"\nx"),
    "empty": stream(L_DEFAULT, [[READ, 10], [READLINE, 10], [AT_EOF, 0]], b""),
    "limit-raised-after-enobufs": stream(limit_byte(4), [[READLINE, 0x7f], [SET_LIMIT, 63],
                                                         [READLINE, 0x7f], [READLINE, 0x7f]],
                                         b"abcdefgh\nij\n", chunks=[2]),
}

# ---- fuzz_http_parse ----------------------------------------------------------
# [limit][pad][padbyte][where][nchunks] chunks... bytes
H_65536 = 207


def http(data, limit=H_65536, chunks=()):
    return bytes([limit, 0, ord("a"), 0, len(chunks)]) + bytes(c - 1 for c in chunks) + data


def http_limit(n):
    assert 4 <= n <= 203
    return n - 4


PIPELINE = (b"GET / HTTP/1.1\r\nHost: t\r\n\r\nHEAD /small.txt HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")

HTTP = {
    "get-root": http(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"),
    "head-close": http(b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    "pipelined": http(PIPELINE, chunks=[3, 7, 1, 40]),
    "pipelined-bytewise": http(PIPELINE[:120], chunks=[1]),
    "http10-keep-alive": http(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"
                              b"GET / HTTP/1.0\r\n\r\n"),
    "connection-tokens": http(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Keep-Alive , foo,\tclose \r\n\r\n"),
    "post-body-then-get": http(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"
                               b"GET /small.txt?q=1 HTTP/1.1\r\nHost: t\r\n\r\n", chunks=[12]),
    "empty-lines-first": http(b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", chunks=[1, 2]),
    "chunked-501": http(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
    "bad-request-lines": http(b"GET / HTTP/2.0\r\n\r\n"),
    "no-version": http(b"GET /\r\n\r\n"),
    "header-no-colon": http(b"GET / HTTP/1.1\r\nNo colon\r\n\r\n"),
    "obs-fold": http(b"GET / HTTP/1.1\r\nA: b\r\n folded: x\r\n\r\n"),
    "bare-lf": http(b"GET / HTTP/1.1\r\nHost: a\nb\r\n\r\n"),
    "content-length-twice": http(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc"
                                 b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
    "content-length-huge": http(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 9999999999999999\r\n\r\n"),
    "dot-dot-encoded": http(b"GET /sub/%2E%2E/%2e%2e/secret.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /..%2fx HTTP/1.1\r\nHost: t\r\n\r\n"
                            b"GET //etc/passwd HTTP/1.1\r\nHost: t\r\n\r\nGET /%2fetc/passwd HTTP/1.1\r\nHost: t\r\n\r\n"),
    "percent-bad": http(b"GET /%zz HTTP/1.1\r\nHost: t\r\n\r\nGET /%2 HTTP/1.1\r\nHost: t\r\n\r\n"),
    "percent-nul": http(b"GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n"),
    "absolute-form": http(b"GET http://example.com/a/b.txt?x HTTP/1.1\r\nHost: t\r\n\r\nGET http://example.com HTTP/1.1\r\nHost: t\r\n\r\n"),
    "method-405": http(b"DELETE /x HTTP/1.1\r\nHost: t\r\n\r\nPUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nokG@T / HTTP/1.1\r\nHost: t\r\n\r\n"),
    "long-path": http(b"GET /" + b"p" * 1030 + b" HTTP/1.1\r\nHost: t\r\n\r\nGET /" + b"%41" * 400 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
                      limit=207),
    "over-limit": http(b"GET / HTTP/1.1\r\nX-Long: " + b"v" * 80 + b"\r\n\r\n", limit=http_limit(64), chunks=[16]),
    "exactly-limit": http(b"GET / HTTP/1.1\r\nX: " + b"v" * 21 + b"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
                          limit=http_limit(44), chunks=[5]),
    "garbage": http(bytes(range(256))),
    # HTTP/1.1 needs a Host (400 without, or with two); ranges and conditions
    # are the server's to read, but their headers go through the parser.
    "host-rules": http(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
                       b"GET / HTTP/1.0\r\n\r\n", chunks=[7]),
    "range-conditional": http(b"GET /small.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-3\r\n"
                              b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"
                              b"GET /small.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=-5\r\n"
                              b"If-None-Match: \"x\"\r\nIf-Range: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n"
                              b"GET /small.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=9-,0-1\r\n"
                              b"If-Modified-Since: Sun Nov  6 08:49:37 1994\r\n\r\n"),
    "control-bytes": http(b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n"
                          b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x7fb\r\n\r\n"),
}

# ---- fuzz_resp -------------------------------------------------------------------
# [base][pad][padbyte][where][nchunks] chunks... bytes
B_65536, B_16, B_64 = 0, 1, 2


def chunk_byte(n):
    """A chunk size of n bytes (1 to 128) or n KiB (n = -k)."""
    return (0x80 | (-n - 1)) if n < 0 else n - 1


def resp(data, base=B_65536, chunks=(), pad=None):
    """pad: (kib, byte): kib KiB of byte inserted where data has b"<PAD>"."""
    head = bytes([base, 0, ord("a"), 0, len(chunks)])
    if pad is not None:
        # The padding goes at len(rest) * where / 256: make the rest 256
        # bytes long (empty lines at the end), and where the offset.
        at = data.index(b"<PAD>")
        data = data.replace(b"<PAD>", b"")
        assert len(data) <= 256
        data += b"\n" * (256 - len(data))
        head = bytes([base, 0x80 | pad[0], pad[1], at, len(chunks)])
    return head + bytes(chunk_byte(c) for c in chunks) + data


def mb(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


RESP = {
    "ping-inline": resp(b"PING\r\n"),
    "set-get-multibulk": resp(mb(b"SET", b"greeting", b"hello") + mb(b"GET", b"greeting")),
    "smoke-pipeline": resp(b"PING\r\nSET x 5\r\nINCR x\r\nGET x\r\n\r\nPING a b\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n",
                           chunks=[3, 1, 9]),
    "pipeline-bytewise": resp(mb(b"INCR", b"k:1") + b"INCR k:2\r\n" + mb(b"GET", b"k:1"), chunks=[1]),
    "empty-commands": resp(b"*0\r\n*-1\r\n\r\n\n  \t \r\nPING\r\n"),
    "binary-bulk": resp(mb(b"SET", b"bin", b"a\r\nb\x00c\r\n") + mb(b"ECHO", b"")),
    "tabs-and-spaces": resp(b"  SET \t k\tv  \r\n\tGET k\n"),
    "twelve-args": resp(mb(*[b"%d" % i for i in range(12)]) + b"DEL a b c d e f g h i j k\r\n"),
    "expected-dollar": resp(b"*2\r\n$4\r\nECHO\r\n:1\r\n"),
    "bulk-length-bad": resp(b"*1\r\n$-1\r\n"),
    "bulk-length-too-big": resp(b"*1\r\n$536870913\r\n"),
    "multibulk-count-bad": resp(b"*2147483648\r\n"),
    "multibulk-leading-zero": resp(b"*01\r\n$4\r\nPING\r\n"),
    "bulk-no-crlf-check": resp(b"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n"),
    "incomplete-at-end": resp(mb(b"PING") + b"*2\r\n$4\r\nECHO\r\n$10\r\nabc", chunks=[4]),
    "small-base-limit": resp(mb(b"SET", b"key", b"v" * 100) + b"GET key\r\n" + mb(b"PING"), base=B_16,
                             chunks=[5, 17]),
    "small-base-inline-long": resp(b"ECHO " + b"w" * 150 + b"\r\nPING\r\n", base=B_64, chunks=[20]),
    "big-bulk-padded": resp(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$102400\r\n<PAD>\r\nGET k\r\n",
                            chunks=[-16, -5], pad=(100, ord("z"))),
    "inline-too-big-padded": resp(b"ECHO <PAD>\r\nPING\r\n", chunks=[-8], pad=(70, ord("q"))),
    "header-too-big-padded": resp(b"*1\r\n$<PAD>\r\nPING\r\n", chunks=[-32], pad=(66, ord("7"))),
}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (target, len(seeds)))


write("fuzz_stream", STREAM)
write("fuzz_http_parse", HTTP)
write("fuzz_resp", RESP)
sys.exit(0)
