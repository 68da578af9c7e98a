#!/usr/bin/python3
"""Ordinary HTTP/2 requests (not CONNECT) on python3-h2 over cleartext TCP, both roles, to test h2/
and http/h2c.ts against an independent stack: pseudo-headers, bodies under flow control and
trailers both ways. h2's own header validation stays on in both directions.

`server --listen HOST:0` prints `READY <port>`, then for each request one JSON line (`headers`,
`body_bytes`, `trailers`, `connection`) when it has ended, and answers it: `/trailers-only` with
one HEADERS frame with END_STREAM (grpc-status 5); anything else with 200, `x-method`, `x-path`,
`x-scheme`, `x-authority`, the request body echoed (`ok` when it had none), and the trailers
`x-body-bytes` and `x-request-trailer` (the request's `x-checksum` trailer, or `none`).

`client --connect HOST:PORT` makes `--rounds` connections; on each it sends a POST `/post` with
`--payload-bytes` of body and the trailer `x-checksum: <bytes>`, then a GET `/get?x=1` with
END_STREAM, and with `--goaway` a raw GOAWAY(NO_ERROR) right behind that last request's HEADERS.
It reads both responses with their trailers and, with `--goaway`, waits for the server to close
the connection. Prints one JSON line: `rounds_ok`, `problems`, `resets`, `eof_after_goaway` and
`responses` (of the last round: `status`, `headers`, `body_bytes`, `echo_ok`, `trailers`). Exits 0
only when every round went as expected.
"""
import argparse
import itertools
import json
import socket
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

sys.dont_write_bytecode = True  # No __pycache__ beside the tests.
from py_h2_client import receive, wait_for_eof  # noqa: E402

print_lock = threading.Lock()
connection_numbers = itertools.count(1)
GOAWAY_NO_ERROR = struct.pack(">I", 8)[1:] + bytes([7, 0]) + struct.pack(">III", 0, 0, 0)


def emit(line):
    with print_lock:
        print(line, flush=True)


def pairs(headers):
    return [[k, v] for k, v in headers]


def send_pending(conn, pending):
    """Sends queued bodies within the windows; a body done is followed by its trailers."""
    for sid in list(pending):
        body, trailers = pending[sid]
        while body:
            n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, len(body))
            if n <= 0:
                break
            conn.send_data(sid, bytes(body[:n]))
            del body[:n]
        if not body:
            if trailers:
                conn.send_headers(sid, trailers, end_stream=True)
            else:
                conn.end_stream(sid)
            del pending[sid]


def serve_connection(sock, number):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    requests, pending = {}, {}
    while True:
        data = sock.recv(1 << 16)
        if not data:
            return
        for event in conn.receive_data(data):
            sid = getattr(event, "stream_id", None)
            if isinstance(event, h2.events.RequestReceived):
                requests[sid] = {"headers": pairs(event.headers), "body": bytearray(),
                                 "trailers": None, "connection": number}
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
                requests[sid]["body"] += event.data
            elif isinstance(event, h2.events.TrailersReceived):
                requests[sid]["trailers"] = pairs(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                answer(conn, sid, requests.pop(sid), pending)
        send_pending(conn, pending)
        sock.sendall(conn.data_to_send())


def answer(conn, sid, req, pending):
    h = dict(req["headers"])
    emit(json.dumps({"headers": req["headers"], "body_bytes": len(req["body"]),
                     "trailers": req["trailers"], "connection": req["connection"]}))
    if h[":path"] == "/trailers-only":
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                                ("grpc-status", "5"), ("grpc-message", "not found")],
                          end_stream=True)
        return
    conn.send_headers(sid, [(":status", "200"), ("x-method", h[":method"]),
                            ("x-path", h[":path"]), ("x-scheme", h[":scheme"]),
                            ("x-authority", h.get(":authority", ""))])
    body = req["body"] or bytearray(b"ok")
    checksum = dict(req["trailers"] or []).get("x-checksum", "none")
    pending[sid] = (body, [("x-body-bytes", str(len(req["body"]))),
                           ("x-request-trailer", checksum)])


def run_server(args):
    host, _, port = args.listen.rpartition(":")
    listener = socket.create_server((host, int(port)))
    emit(f"READY {listener.getsockname()[1]}")

    def guarded(sock, number):
        try:
            serve_connection(sock, number)
        except (OSError, h2.exceptions.H2Error) as e:
            print(f"py_h2_requests: connection {number}: {e!r}", file=sys.stderr, flush=True)
        finally:
            sock.close()

    while True:
        sock, _ = listener.accept()
        threading.Thread(target=guarded, args=(sock, next(connection_numbers)),
                         daemon=True).start()


class Response:
    def __init__(self):
        self.status, self.headers, self.trailers = None, None, None
        self.body = bytearray()
        self.ended = False
        self.reset = None


def one_round(args, number, report):
    host, _, port = args.connect.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    sock.settimeout(0.5)
    deadline = time.monotonic() + args.timeout
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    payload = bytearray((i * 7) & 0xff for i in range(args.payload_bytes))
    post = conn.get_next_available_stream_id()
    conn.send_headers(post, [(":method", "POST"), (":scheme", "http"), (":path", "/post"),
                             (":authority", args.authority), ("content-type", "text/plain")])
    pending = {post: (bytearray(payload), [("x-checksum", str(len(payload)))])}
    get = conn.get_next_available_stream_id()
    conn.send_headers(get, [(":method", "GET"), (":scheme", "http"), (":path", "/get?x=1"),
                            (":authority", args.authority)], end_stream=True)
    send_pending(conn, pending)
    out = conn.data_to_send()
    sock.sendall(out + GOAWAY_NO_ERROR if args.goaway else out)
    responses = {post: Response(), get: Response()}
    problems = []
    def done():
        return all(r.ended or r.reset is not None for r in responses.values())

    for data in receive(sock, deadline, done, number, problems):
        for event in conn.receive_data(data):
            r = responses.get(getattr(event, "stream_id", None))
            if isinstance(event, h2.events.ResponseReceived):
                r.headers = pairs(event.headers)
                r.status = int(dict(r.headers)[":status"])
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                r.body += event.data
            elif isinstance(event, h2.events.TrailersReceived):
                r.trailers = pairs(event.headers)
            elif isinstance(event, h2.events.StreamEnded):
                r.ended = True
            elif isinstance(event, h2.events.StreamReset):
                report["resets"].append([event.stream_id, int(event.error_code)])
                if r is not None:
                    r.reset = int(event.error_code)
        send_pending(conn, pending)
        sock.sendall(conn.data_to_send())
    if args.goaway and not problems:
        if wait_for_eof(sock, deadline):
            report["eof_after_goaway"] += 1
        else:
            problems.append(f"round {number}: server kept the connection after GOAWAY")
    sock.close()
    report["responses"] = [{"status": r.status, "headers": r.headers, "trailers": r.trailers,
                            "body_bytes": len(r.body), "echo_ok": bytes(r.body) == payload,
                            "reset": r.reset} for r in (responses[post], responses[get])]
    report["problems"] += problems
    if not problems:
        report["rounds_ok"] += 1


def run_client(args):
    report = {"rounds_ok": 0, "problems": [], "resets": [], "eof_after_goaway": 0,
              "responses": []}
    for number in range(args.rounds):
        try:
            one_round(args, number, report)
        except (OSError, h2.exceptions.H2Error) as e:
            report["problems"].append(f"round {number}: {type(e).__name__}: {e}")
    emit(json.dumps(report))
    sys.exit(0 if report["rounds_ok"] == args.rounds else 1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", required=True, help="HOST:PORT; port 0 picks one")
    c = sub.add_parser("client")
    c.add_argument("--connect", required=True, help="HOST:PORT")
    c.add_argument("--authority", default="svc.ns1:8080")
    c.add_argument("--payload-bytes", type=int, default=200_000)
    c.add_argument("--rounds", type=int, default=1)
    c.add_argument("--goaway", action="store_true", help="GOAWAY right after the last request")
    c.add_argument("--timeout", type=float, default=20.0, help="seconds per round")
    args = p.parse_args()
    run_server(args) if args.mode == "server" else run_client(args)


if __name__ == "__main__":
    main()
