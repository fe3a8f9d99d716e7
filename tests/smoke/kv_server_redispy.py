"""examples/kv_server driven by redis-py, as an application would use it: a
helper of tests/smoke/kv_server.sh (which starts the server, and skips this
when `import redis` fails).

    kv_server_redispy.py PORT

Checks the commands redis-py sends by default and their replies, the
errors it raises, and transactions: pipeline() (MULTI ... EXEC), with an
error at run time (one entry of the results) and one at queue time
(EXECABORT: nothing applied). A failure prints what went wrong, exits 1.
"""
import sys
import time

import redis

PORT = int(sys.argv[1])


def fail(msg):
    print("kv_server_redispy: " + msg, file=sys.stderr)
    sys.exit(1)


def check(what, got, want):
    if got != want:
        fail("%s: expected %r, got %r" % (what, want, got))


def raises(what, fn, text):
    try:
        got = fn()
    except redis.ResponseError as e:
        if text not in str(e):
            fail("%s: expected an error with %r, got %r" % (what, text, str(e)))
        return
    fail("%s: expected an error with %r, got %r" % (what, text, got))


r = redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=10)
check("FLUSHDB", r.flushdb(), True)
check("DBSIZE", r.dbsize(), 0)
check("PING", r.ping(), True)

# Strings and counters.
check("SET", r.set("n", 10), True)
check("INCRBY", r.incrby("n", 5), 15)
check("DECR", r.decr("n"), 14)
check("DECRBY", r.decrby("n", 4), 10)
check("INCR", r.incr("n"), 11)
check("GET", r.get("n"), b"11")
r.set("word", "hello")
raises("INCR of a word", lambda: r.incr("word"), "value is not an integer or out of range")
raises("INCRBY by a word", lambda: r.execute_command("INCRBY", "n", "x"),
       "value is not an integer or out of range")
r.set("top", 2**63 - 1)
raises("INCR past 2**63 - 1", lambda: r.incr("top"), "increment or decrement would overflow")
check("MSET", r.mset({"a": "1", "b": "2", "c": b"\x00\r\n"}), True)
check("MGET", r.mget("a", "b", "missing", "c"), [b"1", b"2", None, b"\x00\r\n"])
check("DBSIZE", r.dbsize(), 6)
raises("MSET with a key alone", lambda: r.execute_command("MSET", "a", "1", "b"),
       "wrong number of arguments for 'mset' command")

# Times to live.
check("TTL of a key without", r.ttl("a"), -1)
check("TTL of no key", r.ttl("missing"), -2)
check("EXPIRE", r.expire("a", 100), True)
check("TTL", r.ttl("a"), 100)
check("PEXPIRE", r.pexpire("b", 50000), True)
pttl = r.pttl("b")
if not 49000 <= pttl <= 50000:
    fail("PTTL: %r, expected 49000 to 50000" % pttl)
check("EXPIRE of no key", r.expire("missing", 10), False)
check("EXPIRE NX of a key with one", r.execute_command("EXPIRE", "a", 10, "NX"), 0)
check("EXPIRE GT", r.execute_command("EXPIRE", "a", 200, "GT"), 1)
check("TTL after GT", r.ttl("a"), 200)
check("PERSIST", r.persist("a"), True)
check("PERSIST again", r.persist("a"), False)
check("TTL after PERSIST", r.ttl("a"), -1)
check("PEXPIRE 100 ms", r.pexpire("c", 100), True)
time.sleep(0.3)
check("GET of an expired key", r.get("c"), None)
check("EXPIRE in the past", r.expire("b", -1), True)
check("EXISTS after EXPIRE -1", r.exists("b"), 0)
raises("EXPIRE by a word", lambda: r.expire("a", "soon"), "value is not an integer or out of range")

# Connection commands.
check("CLIENT SETNAME", r.client_setname("smoke"), True)
check("CLIENT GETNAME", r.client_getname(), "smoke")
check("CLIENT SETINFO", r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "redis-py"), b"OK")
if not isinstance(r.client_id(), int):
    fail("CLIENT ID: not an integer")
hello = r.execute_command("HELLO", "2")
if not isinstance(hello, list) or len(hello) != 14 or hello[4:6] != [b"proto", 2]:
    fail("HELLO 2: %r" % (hello,))
raises("HELLO 3", lambda: r.execute_command("HELLO", "3"), "unsupported protocol version")
raises("SELECT 1", lambda: r.select(1), "DB index is out of range")
check("SELECT 0", r.select(0), True)
raises("unknown command", lambda: r.execute_command("FROB", "x"),
       "unknown command 'FROB', with args beginning with: 'x' ")
raises("GET with two keys", lambda: r.execute_command("GET", "a", "b"),
       "wrong number of arguments for 'get' command")
commands = r.command()
if "get" not in commands or commands["get"]["arity"] != 2:
    fail("COMMAND: %r" % (commands.get("get"),))
check("COMMAND COUNT", r.command_count(), len(commands))
raises("a client of database 1", lambda: redis.Redis(host="127.0.0.1", port=PORT, db=1).ping(),
       "DB index is out of range")

# Transactions: redis-py's default pipeline is MULTI ... EXEC.
r.set("t", 1)
with r.pipeline() as p:
    check("pipeline", p.set("t", 5).incr("t").incrby("t", 10).get("t").execute(),
          [True, 6, 16, b"16"])
with r.pipeline() as p:
    p.set("u", "x").incr("u").set("v", "after")
    got = p.execute(raise_on_error=False)
    if got[0] is not True or not isinstance(got[1], redis.ResponseError) or got[2] is not True:
        fail("a pipeline with an error at run time: %r" % (got,))
check("the command after the run-time error", r.get("v"), b"after")
with r.pipeline() as p:
    p.set("w", "never").execute_command("FROB")
    raises("a pipeline with an unknown command", p.execute, "unknown command 'FROB'")
check("a key set in an aborted transaction", r.get("w"), None)
with r.pipeline(transaction=False) as p:
    check("pipeline without MULTI", p.set("x", 1).incr("x").execute(), [True, 2])
check("QUIT", r.execute_command("QUIT"), True)
check("a command after QUIT (a new connection)", r.get("x"), b"2")
check("FLUSHDB", r.flushdb(), True)
check("DBSIZE after FLUSHDB", r.dbsize(), 0)
print("redis-py %s: commands, errors and transactions as Redis answers them" % redis.__version__)
