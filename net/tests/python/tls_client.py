"""A TLS client we did not write (Python's ssl module, OpenSSL): connects
to a walle server, checks its certificate against a CA file for the name
"localhost", writes one frame given in hex, and prints the body of the
one length-prefixed (u32, big-endian) frame it gets back, in hex.

usage: tls_client.py PORT CA_FILE FRAME_HEX
"""

import socket
import ssl
import sys


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def main():
    port, ca_file, frame = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            conn.sendall(frame)
            length = int.from_bytes(read_exact(conn, 4), "big")
            body = read_exact(conn, length)
            print(conn.version(), body.hex())


if __name__ == "__main__":
    main()
