#!/usr/bin/python3
"""A throwaway webhook receiver for tests, on Python's http.server.

Listens on 127.0.0.1, on a port the OS picks (written to --port-file), over TLS when --cert and
--key are given. Each POST is written to --dir as <n>.json: its path, headers and body. The
answer's status is read from the file `status` in --dir when it exists (an outage: 503),
else 200.
"""
import argparse
import json
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--dir", required=True)
parser.add_argument("--cert")
parser.add_argument("--key")
args = parser.parse_args()
lock = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status_file = os.path.join(args.dir, "status")
        status = int(open(status_file).read().strip()) if os.path.exists(status_file) else 200
        if status == 200:
            with lock:
                n = len([f for f in os.listdir(args.dir) if f.endswith(".json")]) + 1
                with open(os.path.join(args.dir, f"{n}.json"), "w") as f:
                    json.dump({"path": self.path, "headers": dict(self.headers), "body": body.decode("utf-8")}, f)
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
if args.cert:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
