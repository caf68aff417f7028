"""A KCP client on skywind3000's reference ikcp (through the siokcp
binding), speaking walle frames to a walle kcp server: the interop peer
of net/tests/kcp_interop.rs.

Usage: python3 kcp_ikcp_client.py HOST PORT

It sends requests to the route "echo" (the walle format: u32 length, then
cmd, flag, reserved, uri length, u64 seq, u32 payload length, uri,
payload), some of them coalesced in one KCP message, one spanning many
fragments, and reads the answers as a byte stream: each must echo its
request's seq and payload. It prints "ok N" after N answers and exits 0;
any mismatch or a timeout exits 1 with the reason.
"""

import os
import socket
import struct
import sys
import time

from siokcp import KCPConnection


def request(seq, payload):
    uri = b"echo"
    body = struct.pack(">BBBBQI", 1, 0, 0, len(uri), seq, len(payload)) + uri + payload
    return struct.pack(">I", len(body)) + body


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(0.002)
    start = time.monotonic()

    def now_ms():
        return int((time.monotonic() - start) * 1000)

    conv = struct.unpack("<I", os.urandom(4))[0] | 1
    kcp = KCPConnection(conv, lambda data: sock.send(data) and 0, lambda log: None)
    kcp.nodelay(1, 10, 2, 1)
    kcp.wndsize(256, 256)

    payloads = {}
    # Three small requests in one KCP message, then one of 100 KB (many
    # fragments), then twenty one by one.
    coalesced = b""
    for seq in (1, 2, 3):
        payloads[seq] = bytes([seq]) * (10 * seq)
        coalesced += request(seq, payloads[seq])
    kcp.send(coalesced)
    payloads[4] = bytes(range(256)) * 400
    kcp.send(request(4, payloads[4]))
    for seq in range(5, 25):
        payloads[seq] = ("answer %d" % seq).encode()
        kcp.send(request(seq, payloads[seq]))

    stream = b""
    answered = 0
    deadline = time.monotonic() + 30
    while answered < len(payloads):
        if time.monotonic() > deadline:
            print("timed out after %d answers" % answered)
            return 1
        kcp.update(now_ms())
        try:
            kcp.receive_data(sock.recv(65536))
            sock.setblocking(False)
            while True:  # all that waits, before the next update
                kcp.receive_data(sock.recv(65536))
        except (BlockingIOError, socket.timeout, ConnectionRefusedError):
            pass
        sock.settimeout(0.002)
        while True:
            message = kcp.next_event()
            if message is None:
                break
            stream += message
        while len(stream) >= 4:
            (length,) = struct.unpack(">I", stream[:4])
            if len(stream) < 4 + length:
                break
            body, stream = stream[4 : 4 + length], stream[4 + length :]
            cmd, flag, _, uri_len, seq, payload_len = struct.unpack(">BBBBQI", body[:16])
            payload = body[16 + uri_len : 16 + uri_len + payload_len]
            if cmd != 2 or flag != 0:
                print("seq %d: not an answer: cmd %d flag %d" % (seq, cmd, flag))
                return 1
            if payloads.get(seq) != payload:
                print("seq %d: wrong payload of %d bytes" % (seq, len(payload)))
                return 1
            answered += 1
    kcp.update(now_ms())
    kcp.flush()  # the last acks
    print("ok %d" % answered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
