#!/usr/bin/python3
"""A cleartext HTTP/2 CONNECT client on python3-h2, to test h2/ against an independent stack.

It reuses the stream bookkeeping of tests/interop/h2_client.py (the TLS client) and adds rounds:
each round opens one TCP connection, opens N classic CONNECT streams (only :method and
:authority), sends B random bytes on each, ends it, and reads until the peer ends it, checking the
echo. With --goaway, the moment the last stream has ended both ways the client sends
GOAWAY(NO_ERROR); then it closes the socket at once (even rounds) or waits for the server to close
it (odd rounds, which must happen within the timeout). Prints one JSON line: `rounds_ok`,
`streams_ok`, `bytes`, `problems`, `server_settings`, `resets`, `goaway` (the last received),
`eof_after_goaway`. Exits 0 only when every round went as expected.
"""
import argparse
import json
import os
import socket
import sys
import time

import h2.config
import h2.connection
import h2.exceptions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../interop"))
from h2_client import Stream, handle, send_ready_data  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connect", required=True, help="HOST:PORT")
    p.add_argument("--authority", default="10.0.0.1:8080")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--payload-bytes", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--goaway", action="store_true", help="GOAWAY(NO_ERROR) after the last stream")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per round")
    return p.parse_args()


def wait_for_eof(sock, deadline):
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 16):
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def receive(sock, deadline, done, number, problems):
    """Yields what the server sends until `done()`; a timeout or an early close goes to
    `problems`."""
    while not done():
        if time.monotonic() > deadline:
            problems.append(f"round {number}: timed out")
            return
        try:
            data = sock.recv(1 << 16)
        except socket.timeout:
            continue
        if not data:
            problems.append(f"round {number}: server closed the connection early")
            return
        yield data


def one_round(args, number, report):
    host, _, port = args.connect.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    sock.settimeout(0.5)
    deadline = time.monotonic() + args.timeout
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False))
    conn.initiate_connection()
    streams = {}
    for _ in range(args.streams):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "CONNECT"), (":authority", args.authority)])
        streams[sid] = Stream(sid, os.urandom(args.payload_bytes))
    sock.sendall(conn.data_to_send())
    problems = []
    def done():
        return all(s.done for s in streams.values())

    for data in receive(sock, deadline, done, number, problems):
        for event in conn.receive_data(data):
            handle(event, conn, streams, report)
        send_ready_data(conn, streams)
        sock.sendall(conn.data_to_send())
    for s in streams.values():
        if s.status == 200 and bytes(s.received) == s.payload and s.reset is None:
            report["streams_ok"] += 1
            report["bytes"] += len(s.payload)
        else:
            problems.append(f"round {number} stream {s.id}: status {s.status} reset {s.reset} "
                            f"received {len(s.received)}/{len(s.payload)}")
    if args.goaway and not problems:
        conn.close_connection(error_code=0)
        sock.sendall(conn.data_to_send())
        if number % 2 == 1:
            # The server must close once it saw our GOAWAY and its last stream is done.
            if wait_for_eof(sock, deadline):
                report["eof_after_goaway"] += 1
            else:
                problems.append(f"round {number}: server kept the connection after GOAWAY")
    sock.close()
    report["problems"] += problems
    if not problems:
        report["rounds_ok"] += 1


def main():
    args = parse_args()
    report = {"rounds_ok": 0, "streams_ok": 0, "bytes": 0, "problems": [], "resets": [],
              "server_settings": {}, "connection_window_increment": 0, "pings": 0,
              "eof_after_goaway": 0}
    for number in range(args.rounds):
        try:
            one_round(args, number, report)
        except (OSError, h2.exceptions.H2Error) as e:
            report["problems"].append(f"round {number}: {type(e).__name__}: {e}")
    print(json.dumps(report), flush=True)
    sys.exit(0 if report["rounds_ok"] == args.rounds else 1)


if __name__ == "__main__":
    main()
