"""bench_spawn.py: the Python side of bench_spawn.c.

spawn_tasks_per_s: create tasks that each `await asyncio.sleep(0)` once, run
them to completion and join them with gather, in batches of 1000. The median
of several rounds, each on a fresh loop. (bench_spawn.c spawns 2,000,000 per
round; the default total here is smaller, as Python is much slower.)
"""
import asyncio

import common

BATCH = 1000


async def child():
    await asyncio.sleep(0)


async def spawn_main(total):
    create_task = asyncio.create_task
    t0 = common.now()
    for _ in range(0, total, BATCH):
        tasks = [create_task(child()) for _ in range(BATCH)]
        await asyncio.gather(*tasks)
    return total / (common.now() - t0)


def main():
    p = common.parser(__doc__)
    p.add_argument("--total", type=int, default=200000,
                   help="tasks per round (a multiple of %d)" % BATCH)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    total = max(BATCH, a.total // BATCH * BATCH)
    rates = [common.run(a.loop, spawn_main(total)) for _ in range(a.rounds)]
    print("spawn_tasks_per_s %.0f tasks/s" % common.median(rates))


if __name__ == "__main__":
    main()
