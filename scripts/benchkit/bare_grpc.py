"""The price of gRPC itself on this machine: a grpc.aio server that does nothing but answer (the
coordinator's server, its options and its asyncio loop, without Conveyor), and the CPU it spends
per unary call and per request and reply on a bidirectional stream, each one at a time as an
agent's or a client's calls mostly come.

Run as `python -m benchkit.bare_grpc` it is the server: it prints its port and serves until
stdin closes.
"""

from __future__ import annotations

import asyncio
import queue
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc

from benchkit.procs import cpu_seconds
from conveyor import wire

SERVICE = "bench.Bare"
PAYLOAD = b"x" * 64  # about the size of a step's start or end
WARM_UP_CALLS = 100


@dataclass(frozen=True)
class GrpcPrice:
    unary_s: float  # server CPU seconds per unary call
    stream_pair_s: float  # server CPU seconds per request and its reply on an open stream


async def _unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def _echo(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for request in requests:
        yield request


async def _serve() -> None:
    server = grpc.aio.server(options=list(wire.SERVER_OPTIONS))
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
        "Echo": grpc.stream_stream_rpc_method_handler(_echo),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes
    await server.stop(None)


def measure(calls: int) -> GrpcPrice:
    """Server CPU per call, `calls` unary calls and then `calls` stream round trips."""
    server = subprocess.Popen(
        [sys.executable, "-m", "benchkit.bare_grpc"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    channel = wire.insecure_channel(f"127.0.0.1:{int(server.stdout.readline())}")
    try:
        unary = channel.unary_unary(f"/{SERVICE}/Unary", None, None)
        for _ in range(WARM_UP_CALLS):
            unary(PAYLOAD)
        before = cpu_seconds(server.pid)
        for _ in range(calls):
            unary(PAYLOAD)
        unary_s = (cpu_seconds(server.pid) - before) / calls
        outbox: queue.Queue[bytes | None] = queue.Queue()
        echo = channel.stream_stream(f"/{SERVICE}/Echo", None, None)
        replies: Iterator[bytes] = iter(echo(iter(outbox.get, None)))
        for _ in range(WARM_UP_CALLS):
            outbox.put(PAYLOAD)
            next(replies)
        before = cpu_seconds(server.pid)
        for _ in range(calls):
            outbox.put(PAYLOAD)
            next(replies)
        pair_s = (cpu_seconds(server.pid) - before) / calls
        outbox.put(None)
    finally:
        channel.close()
        server.stdin.close()
        server.wait()
    return GrpcPrice(unary_s, pair_s)


if __name__ == "__main__":
    asyncio.run(_serve())
