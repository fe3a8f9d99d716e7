"""bench_yield.py: the Python side of bench_switch's yield_ns.

Two tasks ping-pong with `await asyncio.sleep(0)`; yield_ns is the time for
both to finish divided by the number of switches (2 * N), loop included.
The median of several rounds, each on a fresh loop, as in bench_switch.c.
(bench_switch.c does N = 2,000,000 per round; Python is ~100x slower, so the
default N here is smaller.)
"""
import asyncio

import common


async def yielder(n):
    for _ in range(n):
        await asyncio.sleep(0)


async def yield_main(n):
    t = [asyncio.create_task(yielder(n)), asyncio.create_task(yielder(n))]
    t0 = common.now()
    await asyncio.gather(*t)
    return (common.now() - t0) * 1e9 / (2.0 * n)


def main():
    p = common.parser(__doc__)
    p.add_argument("--n", type=int, default=200000, help="yields per task per round")
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    y = [common.run(a.loop, yield_main(a.n)) for _ in range(a.rounds)]
    print("yield_ns %.2f ns" % common.median(y))


if __name__ == "__main__":
    main()
