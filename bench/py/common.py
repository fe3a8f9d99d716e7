"""Helpers shared by the Python benchmarks (the counterparts of bench/bench.h).

Each benchmark takes --loop asyncio|uvloop and prints `name value unit` lines
like the C programs in bench/, so that bench/run.sh can put them side by side.
"""
import argparse
import asyncio
import os
import statistics
import time

now = time.perf_counter  # CLOCK_MONOTONIC on Linux, as bench_now() in C


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                   help="event loop implementation (default: asyncio)")
    return p


def new_loop(kind):
    if kind == "uvloop":
        import uvloop  # Debian: python3-uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def mem():
    """Resident memory plus page tables in bytes (VmRSS + VmPTE from
    /proc/self/status; 0 if unknown), as bench.h's bench_mem()."""
    total = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmPTE:")):
                    total += int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return 0
    return total


def run(kind, coro):
    """asyncio.run(coro) on a fresh loop of the given kind (as asyncio_run)."""
    loop = new_loop(kind)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def median(values):
    return statistics.median(values)


_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    """Resident set size in bytes, from /proc/self/statm (0 if unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0
