"""A walle peer over WebSocket, on Python's `websockets` package: a
WebSocket implementation we did not write, speaking the `walle` format
(WIRE.md section 1) with one binary message per frame body, no length
prefix.

    python3 walle_ws.py client ws://127.0.0.1:PORT/
        Checks a walle ws server with the echo routes of net/tests/ws_python.rs;
        exits 0 when every check passed, 1 with the reason otherwise.
    python3 walle_ws.py server
        Serves on a free loopback port, printed as "PORT <n>": answers each
        request with its payload reversed (so the caller can tell the
        answer was computed), pushes a notify "hello" first to every new
        connection; runs until its standard input closes.

Exit 3 when the `websockets` package is missing.
"""

import asyncio
import struct
import sys

try:
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed
except ImportError:
    print("the python package `websockets` is missing: python3 -m pip install websockets",
          file=sys.stderr)
    sys.exit(3)

NOTIFY, REQUEST, RESPONSE = 0, 1, 2
FLAG_ERROR = 0x01
HEADER = struct.Struct(">BBBBQI")  # cmd, flag, reserved, uri_len, seq, payload_len


def encode(cmd, seq, uri, payload, flag=0, reserved=0):
    uri = uri.encode()
    return HEADER.pack(cmd, flag, reserved, len(uri), seq, len(payload)) + uri + payload


def decode(body):
    if len(body) < HEADER.size:
        raise ValueError(f"a body of {len(body)} bytes is shorter than the header")
    cmd, flag, reserved, uri_len, seq, payload_len = HEADER.unpack_from(body)
    uri_end = HEADER.size + uri_len
    if uri_end + payload_len > len(body):
        raise ValueError("uri and payload overrun the body")
    uri = body[HEADER.size:uri_end].decode()
    return cmd, flag, reserved, seq, uri, body[uri_end:uri_end + payload_len]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def run_client(url):
    async with connect(url, max_size=None, ping_interval=None) as ws:
        # Pipelined requests of many sizes, each answered with its seq.
        sizes = [0, 1, 125, 126, 65535, 65536, 300_000, 1_000_000]
        for seq, size in enumerate(sizes, start=1):
            await ws.send(encode(REQUEST, seq, "echo", bytes([seq]) * size, reserved=seq))
        answers = {}
        while len(answers) < len(sizes):
            message = await ws.recv()
            check(isinstance(message, bytes), f"a text message from the server: {message!r}")
            cmd, flag, reserved, seq, uri, payload = decode(message)
            check(cmd == RESPONSE and flag == 0, f"seq {seq}: cmd {cmd} flag {flag}")
            check(reserved == seq, f"seq {seq}: the reserved bits came back as {reserved}")
            answers[seq] = payload
        for seq, size in enumerate(sizes, start=1):
            check(answers[seq] == bytes([seq]) * size, f"seq {seq}: wrong payload")

        # A push before the answer, both in order.
        await ws.send(encode(REQUEST, 100, "push_me", b"x"))
        cmd, _, _, _, uri, payload = decode(await ws.recv())
        check((cmd, uri, payload) == (NOTIFY, "pushed", b"x"), f"the push: {cmd} {uri} {payload!r}")
        cmd, _, _, seq, _, _ = decode(await ws.recv())
        check((cmd, seq) == (RESPONSE, 100), f"the answer after the push: {cmd} {seq}")

        # An unknown route: an error answer, code 4.
        await ws.send(encode(REQUEST, 101, "nowhere", b""))
        cmd, flag, _, seq, _, payload = decode(await ws.recv())
        check(cmd == RESPONSE and flag & FLAG_ERROR and seq == 101, "an error answer")
        check(struct.unpack(">I", payload[:4])[0] == 4, f"code {payload[:4]!r}")

        # The server answers pings.
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 10)

    # A text message: closed by the server with 1003.
    async with connect(url, ping_interval=None) as ws:
        await ws.send("walle speaks binary")
        try:
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("a text message was answered")
        except ConnectionClosed as closed:
            check(closed.rcvd is not None and closed.rcvd.code == 1003,
                  f"closed with {closed.rcvd}")

    # A message over the server's 1 MiB maximum: closed with 1009.
    async with connect(url, ping_interval=None, max_size=None) as ws:
        try:
            await ws.send(encode(REQUEST, 1, "echo", b"\0" * (2 << 20)))
            await asyncio.wait_for(ws.recv(), 10)
            raise AssertionError("an oversized message was answered")
        except ConnectionClosed as closed:
            check(closed.rcvd is not None and closed.rcvd.code == 1009,
                  f"closed with {closed.rcvd}")
    print("python client: all checks passed")


async def run_server():
    async def answer(ws):
        await ws.send(encode(NOTIFY, 0, "hello", b"from python"))
        async for message in ws:
            if not isinstance(message, bytes):
                await ws.close(1003, "binary messages only")
                return
            cmd, flag, reserved, seq, uri, payload = decode(message)
            if cmd == REQUEST:
                await ws.send(encode(RESPONSE, seq, "", payload[::-1], reserved=reserved))

    async with serve(answer, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "client":
        try:
            asyncio.run(run_client(sys.argv[2]))
        except Exception as e:  # every failure is the test's verdict
            print(f"python client: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1)
    elif len(sys.argv) == 2 and sys.argv[1] == "server":
        asyncio.run(run_server())
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
