"""bench_scale.py [N]: the Python side of bench_scale.c.

N tasks (default 1,000,000) alive at once, each sleeping until its own
deadline, the deadlines spread evenly over 2 s from `base`, 1 s after all the
tasks exist (plus an allowance for starting them, see below).
  tasks               how many were alive at once
  create_s            how long creating them took
  start_s             how long starting them took (each runs until it sleeps)
  rss_per_task_bytes  resident memory per sleeping task (/proc/self/statm,
                      before creating the first and after all have started)
  max_wake_late_ms    the latest wake-up past its deadline

With --sweep S, the timeline of bench_scale --sweep S: the first deadline
comes 2 S + SWEEP_ALLOWANCE s + create_s later, and resident memory plus page tables
(VmRSS + VmPTE) is measured 0.2 s before it, as the C side measures once
its sweep is done; the metrics are named sweep_* (and swept_tasks is 0: Python has
nothing to sweep).

Time is time.monotonic(), which is asyncio's loop.time() and the clock of
asyncio_loop_time(); uvloop's loop.time() is cached per loop iteration with
millisecond resolution, so it is not used for measuring.

bench_scale.c sets base = now + 1 s + 1 us per task, its estimate of the time
it takes to start every task (one switch and one timer each), which must fit
before base. Starting a task takes Python several microseconds, so here the
allowance is measured-creation-time-per-task * START_FACTOR (at least 1 us per
task, as in C): otherwise the first deadlines would pass before their tasks
even start, and max_wake_late_ms would measure the start-up instead of the
timers. As in C, a warning goes to stderr if starting still overran base.
"""
import asyncio
import sys
import time

import common

monotonic = time.monotonic
SWEEP_ALLOWANCE = 3.0  # as in bench_scale.c
base = 0.0        # when the first deadline is due, set once all tasks exist
remaining = 0     # sleepers not yet woken (asyncio_task_count() - 1 in C)


async def sleeper(i, n, lates):
    global remaining
    deadline = 2.0 * i / n + base
    await asyncio.sleep(deadline - monotonic())
    lates[i] = monotonic() - deadline
    remaining -= 1


async def scale_main(n, start_factor, sweep):
    global base, remaining
    create_task = asyncio.create_task
    rss0, mem0 = common.rss(), common.mem()
    lates = [0.0] * n  # the per-task array, counted as in C (calloc'ed, touched)
    t0 = monotonic()
    created = 0
    for i in range(n):
        create_task(sleeper(i, n, lates))
        created += 1
    create_s = monotonic() - t0
    remaining = created
    per_task = max(1e-6, start_factor * create_s / max(created, 1))
    base = monotonic() + 1.0 + created * per_task
    if sweep > 0:
        base += 2 * sweep + SWEEP_ALLOWANCE + create_s
    t1 = monotonic()
    await asyncio.sleep(0)  # every task starts and goes to sleep
    start_s = monotonic() - t1
    rss1 = common.rss()
    rss_per_task = (rss1 - rss0) / created if created else 0.0
    if monotonic() > base:
        print("bench_scale.py: starting took longer than planned", file=sys.stderr)
    mem_per_task = 0.0
    if sweep > 0:
        await asyncio.sleep(max(0.0, base - 0.2 - monotonic()))
        mem_per_task = (common.mem() - mem0) / created if created else 0.0
    while remaining > 0:
        await asyncio.sleep(0.01)
    max_late = max(0.0, max(lates[:created], default=0.0))
    return created, create_s, start_s, rss_per_task, max_late, mem_per_task


def main():
    p = common.parser(__doc__)
    p.add_argument("n", nargs="?", type=int, default=1000000)
    p.add_argument("--sweep", type=float, default=0.0,
                   help="the timeline of bench_scale --sweep S (seconds)")
    p.add_argument("--start-factor", type=float, default=2.0,
                   help="start-up allowance as a multiple of the creation time "
                        "(default 2)")
    a = p.parse_args()
    if a.n <= 0:
        sys.exit(2)
    created, create_s, start_s, rss_per_task, max_late, mem_per_task = common.run(
        a.loop, scale_main(a.n, a.start_factor, a.sweep))
    p = "sweep_" if a.sweep > 0 else ""
    print("%stasks %d tasks" % (p, created))
    print("%screate_s %.2f s" % (p, create_s))
    print("%sstart_s %.2f s" % (p, start_s))
    if a.sweep > 0:
        print("swept_tasks 0 tasks")
        print("sweep_mem_per_task_bytes %.0f bytes" % mem_per_task)
    else:
        print("rss_per_task_bytes %.0f bytes" % rss_per_task)
    print("%smax_wake_late_ms %.2f ms" % (p, max_late * 1e3))
    sys.exit(0 if created == a.n else 1)


if __name__ == "__main__":
    main()
