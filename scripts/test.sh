#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what a bare machine lacks
# first, and says so: protoc (Debian protobuf-compiler, for etcd-client's
# build), etcd and etcdctl (Debian etcd-server and etcd-client: the tests start
# their own etcd on free loopback ports), Chromium (Debian chromium: the
# browser client's test), python3 with the websockets package (the ws interop
# tests), the siokcp package (the reference ikcp in C, the kcp interop
# test's peer), the lz4 and pynacl packages (liblz4 and libsodium, the
# packet encoders' interop peers) and prometheus-client (its text parser
# reads the CLI's /metrics), and cargo-nextest. Installing needs root, or sudo. Extra
# arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-pip)

if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "scripts/test.sh: missing ${missing[*]}; run as root, or install them: apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "scripts/test.sh: installing ${missing[*]} with apt-get" >&2
    # Keep Debian from starting an etcd service of its own when the package
    # installs: the tests start theirs.
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
        "${as_root[@]}" chmod +x "$policy"
        own_policy=true
        # Removed however the install ends, or services stay blocked.
        trap '"${as_root[@]}" rm -f "$policy"' EXIT
    fi
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    if $own_policy; then
        "${as_root[@]}" rm -f "$policy"
        trap - EXIT
    fi
fi

if ! python3 -c 'import websockets.asyncio.client' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing the python package websockets (pip)" >&2
    # Debian's own python3 refuses pip installs unless told otherwise.
    python3 -m pip install --quiet websockets ||
        python3 -m pip install --quiet --break-system-packages websockets
fi

if ! cargo nextest --version >/dev/null 2>&1; then
    echo "scripts/test.sh: installing cargo-nextest (cargo install --locked)" >&2
    cargo install cargo-nextest --locked
fi

if ! python3 -c "import siokcp" >/dev/null 2>&1; then
    echo "scripts/test.sh: installing the Python package siokcp (pip)" >&2
    python3 -m pip install --quiet siokcp ||
        python3 -m pip install --quiet --break-system-packages siokcp
fi

if ! python3 -c "import lz4.block, nacl.bindings, prometheus_client" >/dev/null 2>&1; then
    echo "scripts/test.sh: installing the Python packages lz4, pynacl and prometheus-client (pip)" >&2
    python3 -m pip install --quiet lz4 pynacl prometheus-client ||
        python3 -m pip install --quiet --break-system-packages lz4 pynacl prometheus-client
fi

# --all-features: the etcd store, the etcd:// driver and their suites.
cargo nextest run --workspace --all-features --no-fail-fast "$@"
cargo test --workspace --all-features --doc
