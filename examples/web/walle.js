// walle.js: the `walle` packet format for browsers and H5 game clients,
// over WebSocket. Copy this file; it has no dependencies.
//
// On a WebSocket, one binary message carries one frame body, without the
// u32 length prefix a TCP stream puts in front (walle's ws backend). A
// body, every integer big-endian:
//
//   u8  cmd          0 notify (one-way, a push), 1 request, 2 response
//   u8  flag         0x01: the payload is an error (u32 code, UTF-8 text)
//   u8  reserved     8 user bits, carried from a request to its response
//   u8  uri_len      bytes of the route name that follows
//   u64 seq          a response carries its request's seq
//   u32 payload_len
//   uri              UTF-8 route name, e.g. "game.Room/Join"
//   payload          the message, as the server's codec wrote it
//   metadata         the rest: entries sorted by key, each
//                    u16 key_len | u16 count | key | count x (u16 len | value)
//
// Usage:
//
//   import { WalleSocket } from "./walle.js";
//   const socket = await WalleSocket.open("ws://127.0.0.1:7000/");
//   socket.onNotify = (uri, payload) => console.log("push", uri, payload);
//   const answer = await socket.call("echo", new TextEncoder().encode("hi"));
//   socket.close();

export const NOTIFY = 0;
export const REQUEST = 1;
export const RESPONSE = 2;
export const FLAG_ERROR = 0x01;

const HEADER = 16;
const utf8 = new TextEncoder();
const text = new TextDecoder();

/** A packet's fields as encode takes them and decode gives them. */
// { cmd, flag, reserved, seq, uri, payload: Uint8Array, metadata: Map<string, string[]> }

/** Encodes one frame body (what one binary message carries). */
export function encode({ cmd, seq = 0, uri = "", payload = new Uint8Array(), flag = 0,
                         reserved = 0, metadata = null }) {
  const route = utf8.encode(uri);
  if (route.length > 255) throw new RangeError("a walle uri is at most 255 bytes");
  const meta = metadata ? encodeMetadata(metadata) : new Uint8Array();
  const body = new Uint8Array(HEADER + route.length + payload.length + meta.length);
  const view = new DataView(body.buffer);
  view.setUint8(0, cmd);
  view.setUint8(1, flag);
  view.setUint8(2, reserved);
  view.setUint8(3, route.length);
  view.setBigUint64(4, BigInt(seq));
  view.setUint32(12, payload.length);
  body.set(route, HEADER);
  body.set(payload, HEADER + route.length);
  body.set(meta, HEADER + route.length + payload.length);
  return body;
}

/** Decodes one frame body; throws on a malformed one. */
export function decode(message) {
  const body = message instanceof Uint8Array ? message : new Uint8Array(message);
  if (body.length < HEADER) throw new RangeError(`a ${body.length}-byte body is shorter than the header`);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const uriLen = view.getUint8(3);
  const payloadLen = view.getUint32(12);
  const payloadAt = HEADER + uriLen;
  const metaAt = payloadAt + payloadLen;
  if (metaAt > body.length) throw new RangeError("the uri and payload overrun the body");
  return {
    cmd: view.getUint8(0),
    flag: view.getUint8(1),
    reserved: view.getUint8(2),
    seq: Number(view.getBigUint64(4)),
    uri: text.decode(body.subarray(HEADER, payloadAt)),
    payload: body.subarray(payloadAt, metaAt),
    metadata: decodeMetadata(body.subarray(metaAt)),
  };
}

/** The code and text of an error payload (flag 0x01). */
export function decodeError(payload) {
  if (payload.length < 4) return { code: 9, desc: "invalid error payload" };
  const code = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
  return { code, desc: text.decode(payload.subarray(4)) };
}

function encodeMetadata(metadata) {
  const parts = [];
  for (const key of [...metadata.keys()].sort()) {
    const values = metadata.get(key);
    const k = utf8.encode(key);
    parts.push(u16(k.length), u16(values.length), k);
    for (const value of values) {
      const v = utf8.encode(value);
      parts.push(u16(v.length), v);
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

function u16(n) {
  return new Uint8Array([n >> 8, n & 0xff]);
}

function decodeMetadata(bytes) {
  const metadata = new Map();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n) => {
    if (at + n > bytes.length) throw new RangeError("truncated metadata");
  };
  const len16 = () => {
    need(2);
    at += 2;
    return view.getUint16(at - 2);
  };
  const str = (n) => {
    need(n);
    at += n;
    return text.decode(bytes.subarray(at - n, at));
  };
  while (at < bytes.length) {
    const keyLen = len16();
    const count = len16();
    const key = str(keyLen);
    const values = [];
    for (let i = 0; i < count; i++) values.push(str(len16()));
    metadata.set(key, values);
  }
  return metadata;
}

/** A call answered with an error payload. */
export class WalleError extends Error {
  constructor(code, desc) {
    super(`walle error ${code}: ${desc}`);
    this.code = code;
    this.desc = desc;
  }
}

/** A walle connection over WebSocket: calls matched to their answers by
 * seq, notifies both ways. */
export class WalleSocket {
  /** Opens `url` (ws:// or wss://) and resolves once connected. */
  static open(url, protocols) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve(new WalleSocket(ws));
      ws.onerror = () => reject(new Error(`cannot open ${url}`));
    });
  }

  constructor(ws) {
    this.ws = ws;
    this.nextSeq = 1;
    this.pending = new Map();
    /** Called with (uri, payload, packet) for each push of the server. */
    this.onNotify = () => {};
    /** Answers the server's requests: called with (uri, payload, packet),
     * returns the answer's payload (or a promise of it). Unset: the
     * server's requests are dropped. */
    this.onRequest = null;
    /** Called with the CloseEvent once the connection is gone. */
    this.onClose = () => {};
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onclose = (event) => {
      for (const { reject } of this.pending.values()) {
        reject(new Error(`closed (${event.code})`));
      }
      this.pending.clear();
      this.onClose(event);
    };
  }

  /** Calls `uri` with `payload` (Uint8Array); resolves with the answer's
   * payload, rejects with a WalleError for an error answer. */
  call(uri, payload = new Uint8Array(), { reserved = 0, metadata = null } = {}) {
    const seq = this.nextSeq++;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.ws.send(encode({ cmd: REQUEST, seq, uri, payload, reserved, metadata }));
    });
  }

  /** Sends a one-way message. */
  notify(uri, payload = new Uint8Array()) {
    this.ws.send(encode({ cmd: NOTIFY, uri, payload }));
  }

  close(code = 1000) {
    this.ws.close(code);
  }

  #receive(data) {
    if (typeof data === "string") return; // walle speaks binary messages only
    const packet = decode(data);
    if (packet.cmd === RESPONSE) {
      const waiting = this.pending.get(packet.seq);
      if (!waiting) return; // timed out or unknown
      this.pending.delete(packet.seq);
      if (packet.flag & FLAG_ERROR) {
        const { code, desc } = decodeError(packet.payload);
        waiting.reject(new WalleError(code, desc));
      } else {
        waiting.resolve(packet.payload);
      }
    } else if (packet.cmd === REQUEST && this.onRequest) {
      const { seq, reserved } = packet;
      Promise.resolve(this.onRequest(packet.uri, packet.payload, packet)).then((payload) => {
        this.ws.send(encode({ cmd: RESPONSE, seq, reserved, payload }));
      });
    } else if (packet.cmd === NOTIFY) {
      this.onNotify(packet.uri, packet.payload, packet);
    }
  }
}
