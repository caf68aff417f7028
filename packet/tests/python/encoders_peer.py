"""The other end of the packet encoders' interop test, written with
libraries we did not write: python-lz4 (the reference LZ4 C library) and
PyNaCl (libsodium's XChaCha20-Poly1305).

Reads one JSON request on stdin and prints one JSON answer:
- opens `sealed` (a body of walle's AeadEncoder) and decompresses
  `compressed` (a body of walle's Lz4Encoder), printing both in hex;
- seals `text` as two packets of a stream of its own (counters 0 and 1)
  and compresses `text` as an LZ4 block, for walle to undo.
"""

import json
import os
import sys

import lz4.block
from nacl import bindings

VERSION = 1


def open_sealed(key, body):
    version, salt, counter, rest = body[0], body[1:17], body[17:25], body[25:]
    assert version == VERSION, version
    return bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        rest, bytes([version]), salt + counter, key
    )


def seal(key, salt, counter, plain):
    nonce = salt + counter.to_bytes(8, "little")
    sealed = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plain, bytes([VERSION]), nonce, key
    )
    return bytes([VERSION]) + nonce + sealed


def decompress(body):
    if body[0] == 0:
        return body[1:]
    assert body[0] == 1, body[0]
    size = int.from_bytes(body[1:5], "little")
    return lz4.block.decompress(body[5:], uncompressed_size=size)


def main():
    req = json.load(sys.stdin)
    key = bytes.fromhex(req["key"])
    text = bytes.fromhex(req["text"])
    salt = os.urandom(16)
    answer = {
        "opened": open_sealed(key, bytes.fromhex(req["sealed"])).hex(),
        "decompressed": decompress(bytes.fromhex(req["compressed"])).hex(),
        "sealed": [seal(key, salt, n, text).hex() for n in (0, 1)],
        "compressed": (
            b"\x01" + len(text).to_bytes(4, "little") + lz4.block.compress(text, store_size=False)
        ).hex(),
    }
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
