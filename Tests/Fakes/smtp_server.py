#!/usr/bin/python3
"""A throwaway mail server for tests, on aiosmtpd (Debian's python3-aiosmtpd).

Listens on 127.0.0.1, on a port the OS picks (written to --port-file), with STARTTLS required
(or TLS from the first byte with --implicit) and AUTH required over TLS, checked against
--user/--password. Each message received is written to --maildir as <n>.eml, with the envelope
in <n>.json. A file named `down` in --maildir makes it answer 421 to every message (an outage).
"""
import argparse
import asyncio
import json
import os
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--maildir", required=True)
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--user", default="sync")
parser.add_argument("--password", default="s3cret")
parser.add_argument("--implicit", action="store_true")
args = parser.parse_args()

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(args.cert, args.key)
lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(os.path.join(args.maildir, "down")):
            return "421 4.3.0 service not available (a test outage)"
        with lock:
            n = len([f for f in os.listdir(args.maildir) if f.endswith(".eml")]) + 1
            with open(os.path.join(args.maildir, f"{n}.eml"), "wb") as f:
                f.write(envelope.original_content or envelope.content)
            with open(os.path.join(args.maildir, f"{n}.json"), "w") as f:
                json.dump({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                           "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None}, f)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == args.user \
        and auth_data.password.decode() == args.password
    # handled=False: aiosmtpd then answers 535 itself (with the default, it answers nothing).
    return AuthResult(success=True, auth_data=auth_data) if ok else AuthResult(success=False, handled=False)


class OnAnyPort(Controller):
    # The readiness probe connects to the port asked for: port 0 here, so it is told the port
    # the OS gave first.
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


kwargs = dict(hostname="127.0.0.1", port=0, authenticator=authenticate, auth_required=True)
if args.implicit:
    # The whole connection is TLS, which aiosmtpd does not count as STARTTLS: AUTH is offered anyway.
    controller = OnAnyPort(Handler(), ssl_context=context, auth_require_tls=False, **kwargs)
else:
    controller = OnAnyPort(Handler(), tls_context=context, require_starttls=True, auth_require_tls=True, **kwargs)
controller.start()
port = controller.port
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(port))
os.rename(args.port_file + ".tmp", args.port_file)
threading.Event().wait()
