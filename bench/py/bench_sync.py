"""bench_sync.py: the Python side of bench_sync.c, the same workloads.

lock_handoff_ns: two tasks take turns on an asyncio.Lock, each holding it
across `await asyncio.sleep(0)`, per handoff; queue_items_per_s: one
producer and one consumer through asyncio.Queue(maxsize=64);
taskgroup_100k_s: an asyncio.TaskGroup of 100,000 children that each
`await asyncio.sleep(0)` once (median of five groups in one loop, and the
first one alone as taskgroup_100k_cold_s). Medians of several rounds, fresh loop each.
(Smaller counts than C for the first two; the rates are comparable.)
"""
import asyncio

import common


async def lock_main(n):
    lock = asyncio.Lock()

    async def user():
        for _ in range(n):
            async with lock:
                await asyncio.sleep(0)

    t = [asyncio.create_task(user()), asyncio.create_task(user())]
    t0 = common.now()
    await asyncio.gather(*t)
    return (common.now() - t0) * 1e9 / (2.0 * n)


async def queue_main(n):
    q = asyncio.Queue(maxsize=64)

    async def producer():
        for i in range(n):
            await q.put(i + 1)

    async def consumer():
        s = 0
        for _ in range(n):
            s += await q.get()
        assert s == n * (n + 1) // 2

    t = [asyncio.create_task(producer()), asyncio.create_task(consumer())]
    t0 = common.now()
    await asyncio.gather(*t)
    return n / (common.now() - t0)


async def group_main(n):
    """Five groups in one loop: (median, first), as bench_sync.c."""
    async def child():
        await asyncio.sleep(0)

    s = []
    for _ in range(5):
        t0 = common.now()
        async with asyncio.TaskGroup() as g:
            for _ in range(n):
                g.create_task(child())
        s.append(common.now() - t0)
    return common.median(s), s[0]


def main():
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    lock = [common.run(a.loop, lock_main(50000)) for _ in range(a.rounds)]
    queue = [common.run(a.loop, queue_main(200000)) for _ in range(a.rounds)]
    group = [common.run(a.loop, group_main(100000)) for _ in range(a.rounds)]
    print("lock_handoff_ns %.1f ns" % common.median(lock))
    print("queue_items_per_s %.0f items/s" % common.median(queue))
    print("taskgroup_100k_s %.4f s" % common.median([g[0] for g in group]))
    print("taskgroup_100k_cold_s %.4f s" % common.median([g[1] for g in group]))


if __name__ == "__main__":
    main()
