"""A small client of termtrail's shell protocol, written from docs/protocol.md alone.

It speaks WebSocket (RFC 6455) itself over a plain socket, so a conformance
test can see and produce exact bytes: close codes and reasons, frames the
host must refuse (unmasked, reserved bits, text), oversize messages, a client
that stops reading.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
DEFAULT_ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/conformance-XYZ"

# Channels (§2)
STDIN, STDOUT, STDERR, STATUS, RESIZE, HEARTBEAT, CLOSE = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0xFF
MAX_MESSAGE = 65536
REPLAY_MAX = 256 * 1024

# WebSocket opcodes
OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class ProtocolError(Exception):
    pass


def encode_arn(arn):
    """§1: one path segment, percent-encoded; everything outside A-Za-z0-9-._~ encoded."""
    return urllib.parse.quote(arn, safe="-._~")


class HttpAnswer:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> list of values
        self.body = body

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "HTTP %d %s body=%r" % (self.status, self.reason, self.body[:300])


def _read_http_head(sock, deadline):
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk:
            raise ProtocolError("connection closed during HTTP answer (got %r)" % buf)
        buf += chunk
        if len(buf) > 65536:
            raise ProtocolError("HTTP head too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, reason, headers, rest


def http_request(host, port, method, path, headers=(), body=b"", timeout=5.0):
    """A plain HTTP/1.1 request (Connection: close); returns HttpAnswer."""
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        req = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (method, path, host, port)
        for k, v in headers:
            req += "%s: %s\r\n" % (k, v)
        if body:
            req += "Content-Length: %d\r\n" % len(body)
        req += "\r\n"
        sock.sendall(req.encode("latin-1") + body)
        status, reason, hdrs, rest = _read_http_head(sock, deadline)
        body = _read_body(sock, hdrs, rest, deadline)
        return HttpAnswer(status, reason, hdrs, body)
    finally:
        sock.close()


def _read_body(sock, hdrs, rest, deadline):
    cl = hdrs.get("content-length")
    te = (hdrs.get("transfer-encoding") or [""])[0].lower()
    data = rest
    if cl:
        n = int(cl[0])
        while len(data) < n:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data[:n]
    # chunked or until close
    while True:
        try:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        data += chunk
        if te == "chunked" and data.endswith(b"0\r\n\r\n"):
            break
    if te == "chunked":
        out, rest = b"", data
        while rest:
            line, _, rest = rest.partition(b"\r\n")
            n = int(line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        return out
    return data


class Msg:
    """One thing received: kind in binary/text/close/ping/pong/eof/timeout."""

    def __init__(self, kind, data=b"", code=None, reason=b""):
        self.kind = kind
        self.data = data
        self.code = code
        self.reason = reason

    @property
    def channel(self):
        return self.data[0] if self.kind == "binary" and self.data else None

    @property
    def payload(self):
        return self.data[1:]

    def status(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        if self.kind == "close":
            return "Close(%r, %r)" % (self.code, self.reason)
        if self.kind == "binary":
            return "Binary(ch=0x%02x, %r)" % (self.channel, self.payload[:200]) if self.data else "Binary(empty)"
        return "%s(%r)" % (self.kind, self.data[:200])


class WS:
    """One WebSocket connection to a shell host."""

    def __init__(self, sock, answer, buf):
        self.sock = sock
        self.answer = answer
        self.buf = buf
        self.closed_by_peer = None  # Msg of the close frame received
        self.sent_close = False
        self.max_message = 0
        self.channels_seen = set()
        self.log = []  # every Msg received, in order

    # --- connecting (§1) ---
    @classmethod
    def connect(cls, host, port, session="conf-session", shell=None, arn=DEFAULT_ARN,
                session_in="header", qualifier=None, extra_headers=(), rcvbuf=None,
                timeout=5.0, path=None, query_extra=None):
        """Open the shell endpoint. Returns (ws or None, HttpAnswer)."""
        if path is None:
            q = []
            if shell is not None:
                q.append(("shellId", shell))
            if qualifier is not None:
                q.append(("qualifier", qualifier))
            if session_in == "query" and session is not None:
                q.append((SESSION_HEADER, session))
            if query_extra:
                q.extend(query_extra)
            path = "/runtimes/%s/ws/shells" % encode_arn(arn)
            if q:
                path += "?" + urllib.parse.urlencode(q)
        deadline = time.monotonic() + timeout
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n") % (path, host, port, key)
        if session_in == "header" and session is not None:
            req += "%s: %s\r\n" % (SESSION_HEADER, session)
        for k, v in extra_headers:
            req += "%s: %s\r\n" % (k, v)
        req += "\r\n"
        sock.sendall(req.encode("latin-1"))
        status, reason, hdrs, rest = _read_http_head(sock, deadline)
        if status != 101:
            body = _read_body(sock, hdrs, rest, deadline)
            sock.close()
            return None, HttpAnswer(status, reason, hdrs, body)
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        ans = HttpAnswer(status, reason, hdrs, b"")
        if ans.header("sec-websocket-accept") != accept:
            sock.close()
            raise ProtocolError("bad Sec-WebSocket-Accept %r" % ans.header("sec-websocket-accept"))
        return cls(sock, ans, rest), ans

    # --- frames ---
    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length_override is None else length_override
        if n < 126:
            head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            mk = os.urandom(4)
            body = bytes(b ^ mk[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 else _xor(payload, mk)
            self.sock.sendall(head + mk + body)
        else:
            self.sock.sendall(head + payload)

    def send(self, channel, payload=b""):
        self.send_frame(OP_BIN, bytes([channel]) + payload)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def stdin(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.send(STDIN, data)

    def resize(self, width, height):
        self.send(RESIZE, json.dumps({"width": width, "height": height}).encode())

    def heartbeat(self):
        self.send(HEARTBEAT)

    def close_shell(self):
        self.send(CLOSE)

    def ping(self, data=b"p"):
        self.send_frame(OP_PING, data)

    def send_close(self, code=1000, reason=b""):
        self.sent_close = True
        self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason if code is not None else b"")

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                raise EOFError()
            self.buf += chunk

    def _frame(self, deadline):
        # Parse in place; consume only a complete frame (a timeout leaves the buffer intact).
        self._fill(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 0xF
        masked, n = b1 >> 7, b1 & 0x7F
        pos = 2
        if n == 126:
            self._fill(4, deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            pos = 4
        elif n == 127:
            self._fill(10, deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            pos = 10
        if masked:
            pos += 4
        self._fill(pos + n, deadline)
        payload = self.buf[pos:pos + n]
        self.buf = self.buf[pos + n:]
        if masked:
            raise ProtocolError("host sent a masked frame (RFC 6455 section 5.1)")
        if rsv:
            raise ProtocolError("host sent a frame with RSV bits %d" % rsv)
        return fin, op, payload

    def recv(self, timeout=5.0, answer_ping=True):
        """Next message (control frames included). Never raises for timeout/EOF."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        try:
            while True:
                fin, op, payload = self._frame(deadline)
                if op >= 0x8:
                    if op == OP_PING:
                        if answer_ping:
                            self.send_frame(OP_PONG, payload)
                        m = Msg("ping", payload)
                    elif op == OP_PONG:
                        m = Msg("pong", payload)
                    elif op == OP_CLOSE:
                        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                        m = Msg("close", payload, code=code, reason=payload[2:])
                        self.closed_by_peer = m
                        if not self.sent_close:
                            try:
                                self.sent_close = True
                                self.send_frame(OP_CLOSE, payload[:2])
                            except OSError:
                                pass
                    else:
                        raise ProtocolError("reserved control opcode %d" % op)
                    self.log.append(m)
                    return m
                if first_op is None:
                    if op == OP_CONT:
                        raise ProtocolError("continuation without a start")
                    first_op = op
                elif op != OP_CONT:
                    raise ProtocolError("new data frame inside a fragmented message")
                parts.append(payload)
                if fin:
                    data = b"".join(parts)
                    if first_op == OP_TEXT:
                        m = Msg("text", data)
                    elif first_op == OP_BIN:
                        m = Msg("binary", data)
                        self.max_message = max(self.max_message, len(data))
                        if data:
                            self.channels_seen.add(data[0])
                    else:
                        raise ProtocolError("reserved data opcode %d" % first_op)
                    self.log.append(m)
                    return m
        except socket.timeout:
            return Msg("timeout")
        except ConnectionResetError:
            m = Msg("reset")
            self.log.append(m)
            return m
        except (EOFError, BrokenPipeError):
            m = Msg("eof")
            self.log.append(m)
            return m

    def recv_app(self, timeout=5.0):
        """Next data message or close/eof/timeout, skipping pings and pongs."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.0, deadline - time.monotonic()))
            if m.kind not in ("ping", "pong"):
                return m

    def read_until_output(self, needle, timeout=5.0, allow_status=False):
        """Collect STDOUT until needle (bytes or str) appears. Returns (output, msgs)."""
        if isinstance(needle, str):
            needle = needle.encode()
        deadline = time.monotonic() + timeout
        out, msgs = b"", []
        while needle not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError("timed out waiting for %r; got %r (last 300 bytes)" % (needle, out[-300:]))
            m = self.recv_app(left)
            msgs.append(m)
            if m.kind == "binary" and m.channel in (STDOUT, STDERR):
                out += m.payload
            elif m.kind == "binary" and m.channel == STATUS and allow_status:
                continue
            elif m.kind == "binary" and m.channel == HEARTBEAT:
                continue
            elif m.kind == "timeout":
                continue
            else:
                raise ProtocolError("while waiting for %r: unexpected %r (output so far %r)" % (needle, m, out[-300:]))
        return out, msgs

    def read_to_end(self, timeout=5.0):
        """Read everything until the host closes (close frame or EOF). Returns list of Msgs."""
        deadline = time.monotonic() + timeout
        msgs = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                msgs.append(Msg("timeout"))
                return msgs
            m = self.recv_app(left)
            msgs.append(m)
            if m.kind in ("close", "eof", "reset", "timeout"):
                return msgs

    def tcp_state(self):
        """Kernel TCP state of this socket (1 ESTABLISHED, 7 CLOSE, 8 CLOSE_WAIT: the peer sent FIN)."""
        try:
            return self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        except OSError:
            return None

    def host_side_state(self):
        """TCP state of the host's end of this connection, from /proc/net/tcp (loopback only):
        '01' ESTABLISHED, '04' FIN_WAIT1 (the host closed; data still unsent), None (gone)."""
        try:
            lport = self.sock.getsockname()[1]
            pport = self.sock.getpeername()[1]
        except OSError:
            return None
        want_local = "%04X" % pport
        want_rem = "%04X" % lport
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + want_local) and parts[2].endswith(":" + want_rem):
                    return parts[3]
        return None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Drop the TCP connection without a close handshake."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def _xor(data, mk):
    if not data:
        return data
    m = (mk * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(m, "big")).to_bytes(len(data), "big")


# --- status objects (§4) ---

def confirmation(shell_id, reconnected, bytes_dropped=None):
    md = {"shellId": shell_id, "reconnected": reconnected}
    if bytes_dropped is not None:
        md["bytesDropped"] = bytes_dropped
    return {"kind": "Status", "apiVersion": "v1", "metadata": md, "status": "Success"}


def exit_status(code, signal=None):
    if code == 0:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    causes = [{"reason": "ExitCode", "message": str(code)}]
    if signal is not None:
        causes.append({"reason": "Signal", "message": str(signal)})
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "reason": "NonZeroExitCode", "message": "command terminated with exit code %d" % code,
            "details": {"causes": causes}}


def is_confirmation(obj):
    return isinstance(obj.get("metadata"), dict) and "shellId" in obj["metadata"]


def is_notice(obj):
    return obj.get("status") == "Failure" and obj.get("reason") in ("IdleTimeout", "BreakGlassExpired")


def is_exit_status(obj):
    return not is_confirmation(obj) and not is_notice(obj)


def parse_exit(obj):
    """(code, signal or None) from an exit status object."""
    if obj.get("status") == "Success":
        return 0, None
    causes = obj.get("details", {}).get("causes", [])
    code = sig = None
    for c in causes:
        if c.get("reason") == "ExitCode":
            code = int(c["message"])
        elif c.get("reason") == "Signal":
            sig = int(c["message"])
    return code, sig


def refusal_ok(obj, reason, code):
    """Checks a §4 refusal body; returns a list of problems."""
    probs = []
    for k, v in (("kind", "Status"), ("apiVersion", "v1"), ("metadata", {}), ("status", "Failure"),
                 ("reason", reason), ("code", code)):
        if obj.get(k) != v:
            probs.append("%s=%r (want %r)" % (k, obj.get(k), v))
    if not isinstance(obj.get("message"), str) or not obj.get("message"):
        probs.append("message missing")
    return probs


# --- one-shot commands (§9) ---

EVENTSTREAM = "application/vnd.amazon.eventstream"
NDJSON = "application/x-ndjson"


class EventStreamError(Exception):
    pass


def eventstream_split(buf):
    """§9.3: split complete AWS event stream messages off buf.

    Returns ([(headers as [(name, type, value)], payload bytes)], rest). Raises
    EventStreamError on a CRC mismatch or a malformed header (a client MUST
    reject a message whose CRCs do not match)."""
    import zlib
    out = []
    while len(buf) >= 12:
        total, hlen = struct.unpack("!II", buf[:8])
        pcrc = struct.unpack("!I", buf[8:12])[0]
        if zlib.crc32(buf[:8]) & 0xFFFFFFFF != pcrc:
            raise EventStreamError("prelude CRC %08x, computed %08x (prelude %r)" % (pcrc, zlib.crc32(buf[:8]) & 0xFFFFFFFF, buf[:12]))
        if total < 16 + hlen:
            raise EventStreamError("total length %d < 16 + headers length %d" % (total, hlen))
        if len(buf) < total:
            break
        msg, buf = buf[:total], buf[total:]
        mcrc = struct.unpack("!I", msg[-4:])[0]
        if zlib.crc32(msg[:-4]) & 0xFFFFFFFF != mcrc:
            raise EventStreamError("message CRC %08x, computed %08x (message %r)" % (mcrc, zlib.crc32(msg[:-4]) & 0xFFFFFFFF, msg[:200]))
        hb = msg[12:12 + hlen]
        headers, i = [], 0
        while i < len(hb):
            n = hb[i]
            name = hb[i + 1:i + 1 + n].decode("ascii")
            i += 1 + n
            t = hb[i]
            i += 1
            if t != 7:
                raise EventStreamError("header %r has type %d, want 7 (string)" % (name, t))
            vl = struct.unpack("!H", hb[i:i + 2])[0]
            val = hb[i + 2:i + 2 + vl].decode("utf-8")
            i += 2 + vl
            headers.append((name, t, val))
        if i != len(hb):
            raise EventStreamError("headers overrun: %d != %d" % (i, len(hb)))
        out.append((headers, msg[12 + hlen:-4]))
    return out, buf


def eventstream_message(headers, payload):
    """Test helper: encode one event stream message (for a scripted upstream)."""
    import zlib
    hb = b""
    for name, val in headers:
        v = val.encode()
        hb += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack("!H", len(v)) + v
    total = 12 + len(hb) + len(payload) + 4
    prelude = struct.pack("!II", total, len(hb))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + hb + payload
    return body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)


def es_object(headers, payload, problems):
    """An event stream message as the §9.3 object; exceptions as {"__exception__": type, ...}."""
    hd = [(n, v) for n, _, v in headers]
    d = dict(hd)
    if d.get(":message-type") == "event":
        want = [(":message-type", "event"), (":event-type", "chunk"), (":content-type", "application/json")]
        if hd != want:
            problems.append("event headers %r, want %r (in this order)" % (hd, want))
        try:
            return json.loads(payload.decode("utf-8"))
        except ValueError:
            problems.append("event payload not JSON: %r" % payload[:200])
            return {"__unparsable__": payload.decode("utf-8", "replace")}
    if d.get(":message-type") == "exception":
        if [n for n, _ in hd] != [":message-type", ":exception-type", ":content-type"] or d.get(":content-type") != "application/json":
            problems.append("exception headers %r" % hd)
        try:
            body = json.loads(payload.decode("utf-8"))
        except ValueError:
            body = {"__unparsable__": payload.decode("utf-8", "replace")}
        return {"__exception__": d.get(":exception-type"), "body": body}
    problems.append("message of unknown :message-type: %r" % hd)
    return {"__unknown__": hd}


def command(host, port, session, body, arn=DEFAULT_ARN, timeout=10.0, raw_body=None, accept=None,
            extra_headers=(), leave_after=None):
    """POST /runtimes/<arn>/commands. Returns (HttpAnswer, [(seconds since send, event object)]).

    accept: the Accept header (None: none sent). The body is decoded by its
    Content-Type: JSON Lines, or the AWS event stream (CRCs checked; problems in
    answer.problems; raw messages in answer.messages). Each event is stamped with
    the time its last byte arrived. leave_after(events) -> True drops the
    connection at once (a client going away)."""
    path = "/runtimes/%s/commands" % encode_arn(arn)
    data = raw_body if raw_body is not None else json.dumps(body).encode()
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        req = "POST %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
            path, host, port, len(data))
        if session is not None:
            req += "%s: %s\r\n" % (SESSION_HEADER, session)
        if accept is not None:
            req += "Accept: %s\r\n" % accept
        for k, v in extra_headers:
            req += "%s: %s\r\n" % (k, v)
        req += "\r\n"
        t0 = time.monotonic()
        sock.sendall(req.encode() + data)
        status, reason, hdrs, rest = _read_http_head(sock, deadline)
        chunked = (hdrs.get("transfer-encoding") or [""])[0].lower() == "chunked"
        cl = int(hdrs["content-length"][0]) if "content-length" in hdrs else None
        ctype = (hdrs.get("content-type") or [""])[0].split(";")[0].strip().lower()
        es = status == 200 and ctype == EVENTSTREAM
        raw, body_bytes, lines, pending = rest, b"", [], b""
        problems, messages = [], []

        def decode_chunks(buf):
            out = b""
            done = False
            while True:
                i = buf.find(b"\r\n")
                if i < 0:
                    break
                n = int(buf[:i].split(b";")[0] or b"0", 16)
                if n == 0:
                    done = True
                    buf = b""
                    break
                if len(buf) < i + 2 + n + 2:
                    break
                out += buf[i + 2:i + 2 + n]
                buf = buf[i + 2 + n + 2:]
            return out, buf, done

        done = False
        left_early = False
        how = "timeout"
        while True:
            if chunked:
                got, raw, done = decode_chunks(raw)
            else:
                got, raw = raw, b""
            body_bytes += got
            pending += got
            now = time.monotonic() - t0
            if es:
                try:
                    msgs, pending = eventstream_split(pending)
                except EventStreamError as e:
                    problems.append(str(e))
                    msgs, pending = [], b""
                    es = None
                for h, pl in msgs:
                    messages.append((h, pl))
                    lines.append((now, es_object(h, pl, problems)))
            elif es is False:
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        try:
                            lines.append((now, json.loads(line.decode("utf-8"))))
                        except ValueError:
                            lines.append((now, {"__unparsable__": line.decode("utf-8", "replace")}))
            if leave_after is not None and leave_after([o for _, o in lines]):
                left_early = True
                break
            if done or (cl is not None and len(body_bytes) >= cl):
                how = "complete"
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not chunk:
                how = "eof" if chunked or cl is not None else "complete"
                break
            raw += chunk
        if es and pending:
            problems.append("%d bytes after the last complete event stream message: %r" % (len(pending), pending[:100]))
        if es is False and pending.strip():
            try:
                lines.append((time.monotonic() - t0, json.loads(pending.decode("utf-8"))))
            except ValueError:
                lines.append((time.monotonic() - t0, {"__unparsable__": pending.decode("utf-8", "replace")}))
            if status == 200:
                problems.append("last JSON line not newline-terminated")
        ans = HttpAnswer(status, reason, hdrs, body_bytes)
        ans.problems = problems
        ans.messages = messages
        ans.format = ctype
        ans.left_early = left_early
        ans.ended = how   # complete (last chunk / length / close-delimited), eof (cut off), reset, timeout
        if left_early:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        return ans, lines
    finally:
        sock.close()
