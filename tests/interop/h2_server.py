#!/usr/bin/python3
"""A destination-ztunnel stand-in on python3-h2 and Python's ssl: an independent HTTP/2 and TLS
stack for our waypoint's outbound HBONE to talk to (hbone.md §1.2-1.7).

It listens with mutual TLS 1.3 (client certificate required, ALPN h2), and on each CONNECT stream
records what arrived, answers 200 and echoes the stream's bytes back, ending its side after the
client ended its own. Stdout gets `READY <port>` once listening, then one JSON line per CONNECT:
`authority`, `method`, `headers` (name/value pairs as received), `peer_identity` (the client
certificate's URI SAN), `connection` (1-based TCP connection number), `peer_settings` (the client's
SETTINGS so far), `tls`, and `violations` (RFC 9113 rules the header block broke). When a
connection ends, a line with `closed_connection` (its number) sums it up: `streams`, `resets`
received, `goaway` received, `connection_window_increment`, `pings`, `peer_settings`.

h2 4.1.0 insists on :scheme and :path in every request (RFC 7540 rules before RFC 9113 §8.5
exempted CONNECT), so its inbound header validation is turned off and the rules that matter for a
classic CONNECT are checked here instead.
"""
import argparse
import itertools
import json
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

# RFC 9113 §8.2.2: connection-specific fields must not appear in HTTP/2.
CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                       b"upgrade"}

print_lock = threading.Lock()
connection_numbers = itertools.count(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="HOST:PORT to bind; port 0 picks one")
    p.add_argument("--cert-chain", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True, help="root certificate(s) to verify clients")
    return p.parse_args()


def emit(line):
    with print_lock:
        print(line, flush=True)


def warn(message):
    with print_lock:
        print(f"h2_server: {message}", file=sys.stderr, flush=True)


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=args.ca)
    ctx.load_cert_chain(certfile=args.cert_chain, keyfile=args.key)
    ctx.set_alpn_protocols(["h2"])
    return ctx


def uri_sans(cert):
    return [value for kind, value in (cert or {}).get("subjectAltName", ()) if kind == "URI"]


def setting_name(code):
    try:
        return h2.settings.SettingCodes(code).name
    except ValueError:
        return f"0x{int(code):x}"


def violations(headers):
    """The RFC 9113 rules (§8.2, §8.3, §8.5) that a classic CONNECT header block breaks."""
    found = []
    pseudo = []
    seen_regular = False
    for name, value in headers:
        if name != name.lower():
            found.append(f"upper-case field name {name.decode()!r}")
        if name.startswith(b":"):
            if seen_regular:
                found.append(f"pseudo-header {name.decode()} after a regular field")
            pseudo.append(name)
        else:
            seen_regular = True
            if name.lower() in CONNECTION_SPECIFIC:
                found.append(f"connection-specific field {name.decode()}")
            if name.lower() == b"te" and value != b"trailers":
                found.append("te other than trailers")
        if name.lower() == b"host":
            found.append("host field on an HTTP/2 CONNECT")
    if sorted(pseudo) != [b":authority", b":method"]:
        found.append(f"pseudo-headers {sorted(p.decode() for p in pseudo)} are not exactly "
                     "[:authority, :method]")
    return found


class Connection:
    """One TLS connection: its h2 state and the echo backlog of each stream."""

    def __init__(self, sock, number):
        self.sock = sock
        self.number = number
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=False))
        self.pending = {}  # stream id -> bytearray still to echo
        self.client_ended = set()
        self.peer_settings = {}
        self.tls = {}
        self.identity = []
        self.streams = 0
        self.resets = []  # [stream id, error code] of RST_STREAMs received
        self.goaway = None
        self.window_increment = 0  # sum of connection-level WINDOW_UPDATEs received
        self.pings = 0

    def summary(self):
        return {"closed_connection": self.number, "streams": self.streams, "resets": self.resets,
                "goaway": self.goaway, "connection_window_increment": self.window_increment,
                "pings": self.pings, "peer_settings": self.peer_settings}

    def serve(self):
        self.sock.do_handshake()
        # The client's TLS 1.3 suites, as far as this server (OpenSSL defaults) also has them.
        offered = [c[0] for c in self.sock.shared_ciphers() or [] if c[1] == "TLSv1.3"]
        self.tls = {"version": self.sock.version(), "cipher": self.sock.cipher()[0],
                    "alpn": self.sock.selected_alpn_protocol(), "tls13_suites_offered": offered}
        self.identity = uri_sans(self.sock.getpeercert())
        if self.tls["alpn"] != "h2":
            raise ConnectionError(f"client negotiated ALPN {self.tls['alpn']}")
        self.h2.initiate_connection()
        self.sock.sendall(self.h2.data_to_send())
        while True:
            data = self.sock.recv(1 << 16)
            if not data:
                return
            terminated = False
            for event in self.h2.receive_data(data):
                terminated = self.handle(event) or terminated
            self.flush()
            self.sock.sendall(self.h2.data_to_send())
            if terminated and not self.pending:
                return

    def handle(self, event):
        if isinstance(event, h2.events.RequestReceived):
            self.on_request(event)
        elif isinstance(event, h2.events.DataReceived):
            # Give the window back at once; the echo backlog is bounded by the peer's window.
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if event.stream_id in self.pending:
                self.pending[event.stream_id] += event.data
        elif isinstance(event, h2.events.StreamEnded):
            self.client_ended.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.resets.append([event.stream_id, int(event.error_code)])
            self.pending.pop(event.stream_id, None)
            self.client_ended.discard(event.stream_id)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.peer_settings[setting_name(code)] = change.new_value
        elif isinstance(event, h2.events.WindowUpdated):
            if event.stream_id == 0:
                self.window_increment += event.delta
        elif isinstance(event, h2.events.PingReceived):
            self.pings += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = {"error_code": int(event.error_code),
                           "last_stream_id": event.last_stream_id}
            return True
        return False

    def on_request(self, event):
        self.streams += 1
        fields = dict(event.headers)
        record = {
            "authority": fields.get(b":authority", b"").decode(),
            "method": fields.get(b":method", b"").decode(),
            "headers": [[k.decode(), v.decode()] for k, v in event.headers],
            "peer_identity": self.identity[0] if len(self.identity) == 1 else self.identity,
            "connection": self.number,
            "stream_id": event.stream_id,
            "peer_settings": dict(self.peer_settings),
            "tls": self.tls,
            "violations": violations(event.headers),
        }
        emit(json.dumps(record))
        if record["method"] != "CONNECT" or not record["authority"]:
            self.h2.send_headers(event.stream_id, [(":status", "400")], end_stream=True)
            return
        self.h2.send_headers(event.stream_id, [(":status", "200")])
        self.pending[event.stream_id] = bytearray()

    def flush(self):
        """Echoes what the flow-control windows allow, and ends streams the client ended."""
        for sid in list(self.pending):
            backlog = self.pending[sid]
            while backlog:
                window = min(self.h2.local_flow_control_window(sid),
                             self.h2.max_outbound_frame_size)
                if window <= 0:
                    break
                self.h2.send_data(sid, bytes(backlog[:window]))
                del backlog[:window]
            if not backlog and sid in self.client_ended:
                self.h2.end_stream(sid)
                del self.pending[sid]
                self.client_ended.discard(sid)


def serve_one(ctx, client):
    number = next(connection_numbers)
    try:
        sock = ctx.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
    except (OSError, ssl.SSLError) as e:
        warn(f"connection {number}: {e}")
        client.close()
        return
    connection = Connection(sock, number)
    try:
        connection.serve()
    except (OSError, ssl.SSLError, ConnectionError, h2.exceptions.H2Error) as e:
        warn(f"connection {number}: {type(e).__name__}: {e}")
    finally:
        sock.close()
        emit(json.dumps(connection.summary()))


def main():
    args = parse_args()
    host, _, port = args.listen.rpartition(":")
    ctx = tls_context(args)
    listener = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host.strip("[]"), int(port)))
    listener.listen(64)
    emit(f"READY {listener.getsockname()[1]}")
    try:
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve_one, args=(ctx, client), daemon=True).start()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main()
