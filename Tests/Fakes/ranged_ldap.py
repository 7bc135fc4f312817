#!/usr/bin/env python3
"""A fake LDAP server that returns large attributes in ranges, as Active Directory does.

Active Directory sends at most MaxValRange values of an attribute (1,500 by default): an entry
with more comes back as `member;range=0-1499`, and the client asks for `member;range=1500-*`,
and so on, until a range ends in `*`. slapd never does this, so the tests use this fake, built
on ldaptor (which speaks the protocol). It serves the entries of a JSON file
({dn: {attribute: [values]}}), read-only, to any bind; it answers a paged search in one page.

    ranged_ldap.py --entries entries.json --cap 1000 --port-file port.txt
"""
import argparse
import json
import re

from ldaptor.protocols import pureber, pureldap
from ldaptor.protocols.ldap.ldapserver import BaseLDAPServer
from twisted.internet import protocol, reactor

PAGED_RESULTS = b"1.2.840.113556.1.4.319"
RANGE = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)


class RangedServer(BaseLDAPServer):
    entries = {}
    cap = 1500
    log = None

    def respond(self, msg_id, op, controls=None):
        self.transport.write(pureldap.LDAPMessage(op, id=msg_id, controls=controls).toWire())

    def handle(self, msg):
        request = msg.value
        if isinstance(request, pureldap.LDAPBindRequest):
            self.respond(msg.id, pureldap.LDAPBindResponse(resultCode=0))
        elif isinstance(request, pureldap.LDAPUnbindRequest):
            self.transport.loseConnection()
        elif isinstance(request, pureldap.LDAPSearchRequest):
            self.search(msg.id, request, msg.controls or [])
        elif isinstance(request, pureldap.LDAPAbandonRequest):
            pass
        else:
            self.respond(msg.id, pureldap.LDAPExtendedResponse(resultCode=53, errorMessage=b"read-only fake"))

    def search(self, msg_id, request, controls):
        base = request.baseObject.decode().lower()
        asked = [a.decode() for a in request.attributes]
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps({"base": request.baseObject.decode(), "attributes": asked}) + "\n")
        for dn, attributes in self.entries.items():
            lower = dn.lower()
            if request.scope == 0 and lower != base:
                continue
            if request.scope != 0 and not (lower == base or lower.endswith("," + base)):
                continue
            out = []
            for name, values in attributes.items():
                ranged = [RANGE.match(a) for a in asked]
                wanted = [m for m in ranged if m and m.group("name").lower() == name.lower()]
                if wanted:
                    low = int(wanted[0].group("low"))
                elif not asked or "*" in asked or name.lower() in (a.lower() for a in asked):
                    low = 0
                else:
                    continue
                part = values[low:low + self.cap]
                if low == 0 and len(values) <= self.cap:
                    out.append((name, part))  # small enough: sent whole, without a range
                else:
                    end = "*" if low + len(part) >= len(values) else str(low + len(part) - 1)
                    out.append((f"{name};range={low}-{end}", part))
            self.respond(msg_id, pureldap.LDAPSearchResultEntry(
                objectName=dn, attributes=[(n, [v.encode() for v in vs]) for n, vs in out]))
        response_controls = None
        if any(control[0] == PAGED_RESULTS for control in controls):
            value = pureber.BERSequence([pureber.BERInteger(0), pureber.BEROctetString(b"")]).toWire()
            response_controls = [(PAGED_RESULTS, None, value)]
        self.respond(msg_id, pureldap.LDAPSearchResultDone(resultCode=0), controls=response_controls)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", required=True)
    parser.add_argument("--cap", type=int, default=1500)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log")
    args = parser.parse_args()
    with open(args.entries) as f:
        RangedServer.entries = json.load(f)
    RangedServer.cap = args.cap
    RangedServer.log = args.log
    factory = protocol.ServerFactory()
    factory.protocol = RangedServer
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port.getHost().port))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    reactor.run()


if __name__ == "__main__":
    main()
