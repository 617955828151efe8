"""The physical limits: the same work without Conveyor, on the same machine, in the same run."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchkit.config import BUSYBOX

READ_BYTES = 256 * 1024
DOCKER_RUN = ["docker", "run", "--rm", BUSYBOX]
# What the Docker executor does for output: no log driver, the step's stdout read as it comes.
DOCKER_RUN_NO_LOGS = ["docker", "run", "--rm", "--log-driver", "none", BUSYBOX]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def rate(command: list[str], count: int, concurrency: int) -> float:
    """Commands per second, `count` runs at `concurrency` at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: timed(command), range(count)))
    return count / (time.perf_counter() - started)


def durable_write_rate(directory: Path, size: int, chunk: int) -> float:
    """Bytes per second written to a file in `directory` `chunk` at a time, each made durable
    (fsync) before the next, as the coordinator stores a log before acknowledging it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "durable-write.bin"
    data = memoryview(b"\0" * chunk)
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        for start in range(0, size, chunk):
            os.write(fd, data[: size - start])
            os.fsync(fd)
    finally:
        os.close(fd)
        path.unlink()
    return size / (time.perf_counter() - started)


def read_rate(command: list[str], expected_bytes: int) -> float:
    """Bytes per second of a command's stdout read through a pipe, start to end."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    fd, got = process.stdout.fileno(), 0
    while chunk := os.read(fd, READ_BYTES):
        got += len(chunk)
    process.wait()
    elapsed = time.perf_counter() - started
    if got != expected_bytes or process.returncode != 0:
        raise RuntimeError(f"{command}: read {got} of {expected_bytes} bytes")
    return got / elapsed


_DRAIN = (
    "import socket, sys\n"
    "with socket.create_connection(('127.0.0.1', int(sys.argv[1]))) as s:\n"
    "    buf = bytearray(1 << 20)\n"
    "    while s.recv_into(buf):\n"
    "        pass\n"
)


def loopback_send_cpu_per_byte(size: int, chunk: int) -> float:
    """CPU seconds (user and system) a process spends per byte handing `size` bytes to a reader
    in another process over loopback TCP, `chunk` at a time: the kernel's own price of sending
    bytes, which anything serving them over TCP on this machine pays first."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        reader = subprocess.Popen([sys.executable, "-c", _DRAIN, str(port)])
        connection, _ = server.accept()
    data = b"\0" * chunk
    with connection:
        before = resource.getrusage(resource.RUSAGE_THREAD)
        for _ in range(0, size, chunk):
            connection.sendall(data)
        after = resource.getrusage(resource.RUSAGE_THREAD)
    reader.wait()
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return spent / size
