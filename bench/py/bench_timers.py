"""bench_timers.py: the Python side of bench_timers.c.

1,000,000 loop.call_later timers with random delays in [0, 0.1 s), all fired;
then the cost of cancelling pending timers.
  timers               how many
  schedule_and_fire_s  from the first call_later to the last firing
  cancel_ns            per TimerHandle.cancel() of a pending timer
The delays come from the same generator and seed as in bench_timers.c, and
are computed before the clock starts, as are the order of the cancels (the
same stride as in C); so the times are those of the loop, not of the Python
arithmetic. The median of several rounds, each on a fresh loop.
"""
import asyncio

import common

fired = 0


def on_timer():
    global fired
    fired += 1


def lcg_delays(seed, n, offset=0.0):
    """bench_timers.c's delays: seed = seed * 1103515245 + 12345 (mod 2^32),
    delay = offset + (seed >> 8) % 100000 / 1e6."""
    out = []
    append = out.append
    for _ in range(n):
        seed = (seed * 1103515245 + 12345) & 0xFFFFFFFF
        append(offset + (seed >> 8) % 100000 / 1e6)
    return seed, out


async def timers_main(n):
    global fired
    loop = asyncio.get_running_loop()
    call_later = loop.call_later
    seed, delays = lcg_delays(12345, n)
    _, later = lcg_delays(seed, n, 10.0)
    fired = 0
    t0 = common.now()
    for d in delays:
        call_later(d, on_timer)
    while fired < n:
        await asyncio.sleep(0.001)
    fire_s = common.now() - t0

    h = [call_later(d, on_timer) for d in later]
    order = [h[(i * 7919) % n] for i in range(n)]
    t0 = common.now()
    for handle in order:
        handle.cancel()
    cancel_ns = (common.now() - t0) * 1e9 / n
    return fire_s, cancel_ns


def main():
    p = common.parser(__doc__)
    p.add_argument("--n", type=int, default=1000000)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    fire, cancel = [], []
    for _ in range(a.rounds):
        f, c = common.run(a.loop, timers_main(a.n))
        fire.append(f)
        cancel.append(c)
    print("timers %d timers" % a.n)
    print("schedule_and_fire_s %.3f s" % common.median(fire))
    print("cancel_ns %.1f ns" % common.median(cancel))


if __name__ == "__main__":
    main()
