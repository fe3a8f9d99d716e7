"""bench_threads.py: the Python side of bench_threads.c, the same workloads.

  bench_threads.py [--loop asyncio|uvloop] to_thread N
  bench_threads.py [--loop asyncio|uvloop] threadsafe N [LOOP_CPU PRODUCER_CPU]

to_thread: N sequential `await asyncio.to_thread(noop)` round trips (after
1000 not measured), each timed around its await: median, p99, max, mean, the
wall time of the N and the process's CPU time (getrusage: every thread)
per round trip.

threadsafe: a threading.Thread calls loop.call_soon_threadsafe(cb, i) N
times as fast as it can while the main task waits for the N-th callback
(an asyncio.Event, 120 s at most); the rate is N over the time from the
producer's first call to the N-th callback. One warm-up of N/10, then
three runs of N; the median run. LOOP_CPU and PRODUCER_CPU pin the loop's
thread and the producer (os.sched_setaffinity on the calling thread; -1:
not pinned).

Output lines as bench/threads/thr_common.h says (`name value unit`).
"""
import asyncio
import os
import resource
import sys
import threading
import time

import common

WARMUP_TRIPS = 1000  # THR_WARMUP_TRIPS
RUNS = 3             # THR_RUNS


def cpu_ns():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def pin(cpu, who):
    if cpu < 0:
        return
    try:
        os.sched_setaffinity(0, {cpu})  # 0: the calling thread, on Linux
    except OSError as e:
        print("cannot pin the %s thread to CPU %d: %s" % (who, cpu, e), file=sys.stderr)


def noop():
    return None


def quantile(sorted_v, q):
    n = len(sorted_v)
    k = min(max(-int(-q * n // 1), 1), n)  # ceil(q n), nearest rank
    return sorted_v[k - 1]


async def to_thread_main(n):
    for _ in range(WARMUP_TRIPS):
        await asyncio.to_thread(noop)
    trips = [0] * n
    clock = time.perf_counter_ns
    c0 = cpu_ns()
    w0 = clock()
    for i in range(n):
        t0 = clock()
        await asyncio.to_thread(noop)
        trips[i] = clock() - t0
    wall = clock() - w0
    cpu = cpu_ns() - c0
    trips.sort()
    print("to_thread_n %d ops" % n)
    print("to_thread_median_us %.3f us" % (common.median(trips) / 1e3))
    print("to_thread_p99_us %.3f us" % (quantile(trips, 0.99) / 1e3))
    print("to_thread_max_us %.3f us" % (trips[-1] / 1e3))
    print("to_thread_mean_us %.3f us" % (sum(trips) / n / 1e3))
    print("to_thread_total_s %.4f s" % (wall / 1e9))
    print("to_thread_cpu_us_per_op %.3f us" % (cpu / 1e3 / n))


async def threadsafe_run(n, producer_cpu):
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    state = {"received": 0, "order": 0, "end": 0, "start": 0, "failures": 0}

    def cb(i):
        if i != state["received"]:
            state["order"] += 1
        state["received"] += 1
        if state["received"] == n:
            state["end"] = time.perf_counter_ns()
            done.set()

    def producer():
        pin(producer_cpu, "producer")
        call = loop.call_soon_threadsafe
        state["start"] = time.perf_counter_ns()
        for i in range(n):
            try:
                call(cb, i)
            except RuntimeError:  # the loop closed
                state["failures"] += 1

    c0 = cpu_ns()
    th = threading.Thread(target=producer)
    th.start()
    try:
        await asyncio.wait_for(done.wait(), 120)
    except asyncio.TimeoutError:
        print("bench_threads.py: %d of %d callbacks" % (state["received"], n), file=sys.stderr)
        sys.exit(1)
    c1 = cpu_ns()
    th.join()
    return (n / ((state["end"] - state["start"]) / 1e9), (c1 - c0) / n,
            state["failures"], state["order"])


async def threadsafe_main(n, producer_cpu):
    await threadsafe_run(max(n // 10, 1), producer_cpu)
    runs = [await threadsafe_run(n, producer_cpu) for _ in range(RUNS)]
    m = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    print("threadsafe_n %d callbacks" % n)
    print("threadsafe_cb_per_s %.0f cb/s" % m[0])
    print("threadsafe_cpu_ns_per_cb %.1f ns" % m[1])
    print("threadsafe_failures %d calls" % sum(r[2] for r in runs))
    print("threadsafe_order_errors %d callbacks" % sum(r[3] for r in runs))


def main():
    p = common.parser(__doc__)
    p.add_argument("mode", choices=("to_thread", "threadsafe"))
    p.add_argument("n", type=int)
    p.add_argument("cpus", type=int, nargs="*", metavar="CPU",
                   help="threadsafe: LOOP_CPU PRODUCER_CPU (-1: not pinned)")
    a = p.parse_args()
    if a.n <= 0 or len(a.cpus) not in (0, 2) or (a.cpus and a.mode != "threadsafe"):
        p.error("N must be positive; CPUs only for threadsafe, two of them")
    loop_cpu, producer_cpu = a.cpus if a.cpus else (-1, -1)
    if a.mode == "to_thread":
        common.run(a.loop, to_thread_main(a.n))
    else:
        pin(loop_cpu, "loop")
        common.run(a.loop, threadsafe_main(a.n, producer_cpu))


if __name__ == "__main__":
    main()
