#!/usr/bin/python3
"""An HBONE client on python3-h2 and Python's ssl: an independent HTTP/2 and TLS stack to talk to
our waypoint (hbone.md §1.2-1.7).

It makes one mutual TLS 1.3 connection (ALPN h2, no SNI), checks the server's SPIFFE URI SAN,
opens N classic CONNECT streams (only :method and :authority), and on each one that is answered
200 sends B random bytes, ends the stream, and reads until the peer ends it. It prints one JSON
line and exits 0 only when every stream behaved as expected. The line holds `statuses`,
`ok_streams` and `bytes` (echoed correctly), and for diagnosis `problems`, `tls`,
`server_identity`, `server_settings`, `response_headers` (of the first stream), `resets` and
`goaway` received, `connection_window_increment` and `pings`.

h2 4.1.0 insists on :scheme and :path in every request (RFC 7540 rules before RFC 9113 §8.5
exempted CONNECT), so outbound header validation is turned off; the response side keeps h2's
own validation.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", required=True, help="HOST:PORT of the HBONE server")
    p.add_argument("--authority", required=True, help="CONNECT :authority")
    p.add_argument("--cert-chain", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True, help="root certificate(s) to verify the server")
    p.add_argument("--expect-identity", required=True, help="server SPIFFE id (URI SAN)")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--payload-bytes", type=int, default=1024)
    p.add_argument("--expect-status", type=int, default=200,
                   help="status each stream must get; other than 200 means a refusal, no data")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="extra request header, repeatable")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds for the whole exchange")
    return p.parse_args()


def split_host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    # HBONE peers are verified by URI SAN only, never by host name (hbone.md §1.6).
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=args.ca)
    ctx.load_cert_chain(certfile=args.cert_chain, keyfile=args.key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def uri_sans(cert):
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "URI"]


def fail(message, report=None):
    if report is not None:
        report["error"] = message
        print(json.dumps(report), flush=True)
    print(f"h2_client: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


class Stream:
    def __init__(self, stream_id, payload):
        self.id = stream_id
        self.payload = payload
        self.sent = 0
        self.status = None
        self.headers = None
        self.received = bytearray()
        self.local_ended = False
        self.remote_ended = False
        self.reset = None

    @property
    def done(self):
        return self.reset is not None or self.remote_ended and (
            self.local_ended or self.status != 200)


def send_ready_data(conn, streams):
    """Sends as much pending payload as the flow-control windows allow, then END_STREAM."""
    for s in streams.values():
        if s.status != 200 or s.local_ended or s.reset is not None:
            continue
        while s.sent < len(s.payload):
            window = min(conn.local_flow_control_window(s.id), conn.max_outbound_frame_size)
            if window <= 0:
                break
            chunk = s.payload[s.sent:s.sent + window]
            conn.send_data(s.id, chunk)
            s.sent += len(chunk)
        if s.sent == len(s.payload):
            conn.end_stream(s.id)
            s.local_ended = True


def setting_name(code):
    try:
        return h2.settings.SettingCodes(code).name
    except ValueError:
        return f"0x{int(code):x}"


def handle(event, conn, streams, report):
    s = streams.get(getattr(event, "stream_id", None))
    if isinstance(event, h2.events.ResponseReceived):
        s.headers = [(k.decode(), v.decode()) for k, v in event.headers]
        s.status = int(dict(s.headers)[":status"])
    elif isinstance(event, h2.events.DataReceived):
        # Give the window back at once so large echoes keep flowing.
        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        if s is not None:
            s.received += event.data
    elif isinstance(event, h2.events.StreamEnded):
        if s is not None:
            s.remote_ended = True
    elif isinstance(event, h2.events.StreamReset):
        report["resets"].append([event.stream_id, int(event.error_code)])
        if s is not None:
            s.reset = int(event.error_code)
    elif isinstance(event, h2.events.WindowUpdated):
        if event.stream_id == 0:
            report["connection_window_increment"] += event.delta
    elif isinstance(event, h2.events.PingReceived):
        report["pings"] += 1
    elif isinstance(event, h2.events.RemoteSettingsChanged):
        for code, change in event.changed_settings.items():
            report["server_settings"][setting_name(code)] = change.new_value
    elif isinstance(event, h2.events.ConnectionTerminated):
        report["goaway"] = {"error_code": int(event.error_code),
                            "last_stream_id": event.last_stream_id}
    elif isinstance(event, h2.events.TrailersReceived):
        report.setdefault("trailers", []).append(event.stream_id)


def run(args):
    host, port = split_host_port(args.connect)
    report = {"statuses": [], "ok_streams": 0, "bytes": 0, "server_settings": {}, "resets": [],
              "connection_window_increment": 0, "pings": 0}
    deadline = time.monotonic() + args.timeout
    raw = socket.create_connection((host, port), timeout=args.timeout)
    # No SNI: ztunnel neither sends nor needs it.
    sock = tls_context(args).wrap_socket(raw, server_hostname=None)
    sock.settimeout(0.5)  # Short reads, so the deadline is checked.
    report["tls"] = {"version": sock.version(), "cipher": sock.cipher()[0],
                     "alpn": sock.selected_alpn_protocol()}
    if sock.version() != "TLSv1.3" or sock.selected_alpn_protocol() != "h2":
        fail(f"negotiated {sock.version()} with ALPN {sock.selected_alpn_protocol()}", report)
    sans = uri_sans(sock.getpeercert())
    report["server_identity"] = sans
    if sans != [args.expect_identity]:
        fail(f"server URI SANs {sans} are not [{args.expect_identity}]", report)

    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False))
    conn.initiate_connection()
    streams = {}
    extra = [tuple(h.split("=", 1)) for h in args.header]
    for _ in range(args.streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", args.authority), *extra])
        streams[sid] = Stream(sid, os.urandom(args.payload_bytes))
    sock.sendall(conn.data_to_send())

    while not all(s.done for s in streams.values()):
        if time.monotonic() > deadline:
            fail("timed out", summarize(streams, args, report))
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            fail("server closed the connection", summarize(streams, args, report))
        for event in conn.receive_data(data):
            handle(event, conn, streams, report)
        send_ready_data(conn, streams)
        sock.sendall(conn.data_to_send())
        if "goaway" in report and not all(s.done for s in streams.values()):
            fail("server sent GOAWAY with streams open", summarize(streams, args, report))

    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return summarize(streams, args, report)


def summarize(streams, args, report):
    report["statuses"] = [s.status for s in streams.values()]
    ok = 0
    total = 0
    problems = []
    for s in streams.values():
        # RST_STREAM(NO_ERROR) after a complete response is how a server stops a request body it
        # does not want (RFC 9113 §8.1); only other codes are faults of their own.
        if s.reset not in (None, 0):
            problems.append(f"stream {s.id} reset with code {s.reset}")
        elif s.status != args.expect_status:
            problems.append(f"stream {s.id} got status {s.status}")
        elif args.expect_status == 200 and bytes(s.received) != s.payload:
            problems.append(f"stream {s.id} echoed {len(s.received)} bytes that differ "
                            f"from the {len(s.payload)} sent")
        elif args.expect_status != 200 and (s.received or not s.remote_ended):
            problems.append(f"stream {s.id} refusal carried data or did not end")
        else:
            ok += 1
            total += len(s.received)
    report["ok_streams"] = ok
    report["bytes"] = total
    report["problems"] = problems
    first = next(iter(streams.values()), None)
    report["response_headers"] = first.headers if first else None
    return report


def main():
    args = parse_args()
    try:
        report = run(args)
    except (OSError, ssl.SSLError) as e:
        fail(f"{type(e).__name__}: {e}", {"statuses": [], "ok_streams": 0, "bytes": 0})
    print(json.dumps(report), flush=True)
    sys.exit(0 if not report["problems"] else 1)


if __name__ == "__main__":
    main()
