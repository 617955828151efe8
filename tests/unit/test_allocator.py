"""The C allocator's thresholds: a tuned process reuses a freed 4 MiB buffer (a log chunk's size)
instead of taking fresh pages for the next one, which costs a page fault per 4 KiB page.
Each case runs in a fresh interpreter, so this test process's allocator is left alone."""

from __future__ import annotations

import platform
import subprocess
import sys

from conveyor import allocator

CHUNK_BYTES = 4 * 1024 * 1024
ROUNDS = 40
PAGE_BYTES = 4096

# Prints the minor page faults of ROUNDS buffers made, filled and dropped in turn.
PROBE = f"""
import resource, sys
from conveyor import allocator
if sys.argv[1] == "tuned":
    assert allocator.tune_for_large_buffers()
bytes(bytearray({CHUNK_BYTES}))  # the first buffer's pages are new either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range({ROUNDS}):
    chunk = bytes(bytearray({CHUNK_BYTES}))
    del chunk
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults_per_chunk(case: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, case], capture_output=True, text=True, check=True
    )
    return int(done.stdout) / ROUNDS


def test_tuned_the_allocator_reuses_freed_chunks_without_page_faults() -> None:
    assert platform.libc_ver()[0] == "glibc"  # the product's platform, and CI's
    pages = CHUNK_BYTES / PAGE_BYTES
    # Untuned, glibc maps each buffer afresh: a fault for every page of it (here, of two).
    assert faults_per_chunk("default") > pages / 2
    # Tuned, the freed buffer is the next one: next to no faults.
    assert faults_per_chunk("tuned") < pages / 20


def test_the_thresholds_cover_the_largest_log_chunk() -> None:
    from agent.config import LOG_CHUNK_BYTES

    assert allocator.MMAP_THRESHOLD_BYTES > LOG_CHUNK_BYTES
    assert allocator.TRIM_THRESHOLD_BYTES >= allocator.MMAP_THRESHOLD_BYTES
