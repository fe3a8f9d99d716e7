"""bench_subprocess.py: the Python side of bench_subprocess.c's spawn workload.

  bench_subprocess.py [--loop asyncio|uvloop] spawn N CONC

CONC tasks each start /bin/true with asyncio.create_subprocess_exec() (stdin,
stdout and stderr inherited), await proc.wait(), and start the next, until N
have run (after min(N/10, 200) not measured). The default child watcher of
the Python that runs it does the waiting (3.11: a thread per child).

Output lines as bench/subprocess/sp_common.h says (`name value unit`).
"""
import asyncio
import resource
import sys

import common

PROGRAM = "/bin/true"
MAX_CONC = 1024


def cpu_s(who):
    ru = resource.getrusage(who)
    return ru.ru_utime + ru.ru_stime


async def run(n, conc):
    """n spawns, conc at a time: how many failed."""
    state = {"started": 0, "failures": 0}

    async def spawner():
        while state["started"] < n:
            state["started"] += 1
            try:
                proc = await asyncio.create_subprocess_exec(PROGRAM)
                if await proc.wait() != 0:
                    state["failures"] += 1
            except OSError as e:
                if state["failures"] == 0:
                    print(f"bench_subprocess.py: spawn: {e}", file=sys.stderr)
                state["failures"] += 1

    await asyncio.gather(*(spawner() for _ in range(conc)))
    return state["failures"]


async def main(n, conc):
    await run(min(n // 10, 200), conc)
    t0 = common.now()
    self0, children0 = cpu_s(resource.RUSAGE_SELF), cpu_s(resource.RUSAGE_CHILDREN)
    failures = await run(n, conc)
    wall = common.now() - t0
    self_s = cpu_s(resource.RUSAGE_SELF) - self0
    children_s = cpu_s(resource.RUSAGE_CHILDREN) - children0
    print(f"spawn_n {n} procs")
    print(f"spawn_conc {conc} procs")
    print(f"spawn_s {wall:.4f} s")
    print(f"spawn_per_s {n / wall:.1f} procs/s")
    print(f"spawn_cpu_us {(self_s + children_s) * 1e6 / n:.2f} us")
    print(f"spawn_parent_cpu_us {self_s * 1e6 / n:.2f} us")
    print(f"spawn_failures {failures} procs")


if __name__ == "__main__":
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("mode", choices=("spawn",))
    p.add_argument("n", type=int)
    p.add_argument("conc", type=int)
    a = p.parse_args()
    if not 0 < a.n <= 100000000 or not 0 < a.conc <= MAX_CONC:
        p.error(f"N must be positive, CONC 1-{MAX_CONC}")
    common.run(a.loop, main(a.n, a.conc))
