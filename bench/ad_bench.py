#!/usr/bin/env python3
"""Active Directory: the two-domain collection (examples/ad) against Samba AD DCs on this machine.

Domain A (CORP.BENCH) holds N users (a tenth of them managers of the others) and N/10 groups of
ten members. Each round provisions three fresh, empty domains, B, C and D:

- First load: `syncwright run corp-to-partner-ad` copies A's users and groups into B (keyed by
  objectGUID, a generated password each, created disabled → password → enabled, managers and
  members translated), side by side with `ldapadd` over LDAPS of the same entries into C
  (each user one add, with its password and enabled at once; managers and members as B's DNs),
  and with `ldapmodify` of the same entries in AD's order into D (each user added disabled, then
  one modify that sets the password and enables it: the requests Syncwright sends). The ratios
  are the other tool's time over Syncwright's: above 1.0, Syncwright is faster.
- Rerun with no change: `syncwright run` again (it writes nothing), side by side with
  `ldapsearch` paging through what both jobs read, in both domains (four searches, one after
  the other, 1,000 entries a page, the mapped attributes). The ratio is Syncwright's over
  ldapsearch's.

Every client speaks LDAPS to the DCs (`samba -M single`, with `ldb:nosync`), verifying their
certificates. Prints every round and the medians.

    swift build -c release --product syncwright
    python3 bench/ad_bench.py [--users 500] [--rounds 3]
"""
import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import benchlib
from benchlib import GIT_ENV, ROOT

ADMIN_PASSWORD = "Adm1n-Passw0rd!"


class DC:
    """A Samba AD DC provisioned into `folder` on `address`, serving LDAPS with a certificate
    for that address from a CA of its own; stopped by its pid."""

    def __init__(self, folder, address, realm, domain):
        self.folder, self.address, self.realm = folder, address, realm
        self.base = ",".join(f"DC={part.lower()}" for part in realm.split("."))
        self.admin = f"CN=Administrator,CN=Users,{self.base}"
        self.url = f"ldaps://{address}"
        os.makedirs(f"{folder}/tls")
        os.makedirs(f"{folder}/pid")
        os.makedirs(f"{folder}/log")
        tls = f"{folder}/tls"

        def openssl(*args):
            subprocess.run(["openssl", *args], cwd=tls, check=True, capture_output=True)
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                "-subj", f"/CN={realm} bench CA")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={address}")
        with open(f"{tls}/san.ext", "w") as f:
            f.write(f"subjectAltName=IP:{address},DNS:{address}\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
                "-days", "2", "-extfile", "san.ext")
        os.chmod(f"{tls}/server.key", 0o600)
        self.ca = f"{tls}/ca.pem"
        options = [f"interfaces={address}/8", "bind interfaces only=yes", f"netbios name=DC-{domain}",
                   f"pid directory={folder}/pid", f"winbindd socket directory={folder}/sockets",
                   f"ntp signd socket directory={folder}/ntp", f"log file={folder}/log/log.%m", "ldb:nosync=true",
                   "tls enabled=yes", f"tls keyfile={tls}/server.key", f"tls certfile={tls}/server.pem", f"tls cafile={self.ca}"]
        subprocess.run(["samba-tool", "domain", "provision", f"--targetdir={folder}", f"--realm={realm}", f"--domain={domain}",
                        "--server-role=dc", "--dns-backend=NONE", "--use-rfc2307", f"--adminpass={ADMIN_PASSWORD}"]
                       + [f"--option={option}" for option in options], check=True, capture_output=True)
        self.log = open(f"{folder}/samba.log", "w")
        self.proc = subprocess.Popen(["samba", "-s", f"{folder}/etc/smb.conf", "--foreground", "--no-process-group", "-M", "single"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection((address, 636), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"samba did not serve ldaps on {address}")

    def env(self):
        return dict(os.environ, LDAPTLS_CACERT=self.ca, LDAPTLS_REQCERT="demand")

    def ldap(self, tool, *args):
        return [tool, "-x", "-H", self.url, "-D", self.admin, "-w", ADMIN_PASSWORD, *args]

    def add(self, ldif_path):
        start = time.perf_counter()
        subprocess.run(self.ldap("ldapadd", "-f", ldif_path), env=self.env(), check=True, capture_output=True)
        return time.perf_counter() - start

    def search(self, base, attributes):
        return subprocess.run(self.ldap("ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-E", "pr=1000/noprompt", "-b", base,
                                        "(objectClass=*)", *attributes),
                              env=self.env(), check=True, capture_output=True).stdout.decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ou_ldif(*dns):
    return "".join(f"dn: {dn}\nobjectClass: organizationalUnit\n\n" for dn in dns)


def source_ldif(n, staff, groups):
    """Domain A: N users, user i managed by user i - i % 10; N/10 groups of ten."""
    out = []
    for i in range(n):
        manager = f"manager: CN=Given{i - i % 10} Surname{i - i % 10},{staff}\n" if i % 10 else ""
        out.append(f"dn: CN=Given{i} Surname{i},{staff}\nobjectClass: user\nsAMAccountName: user{i}\ngivenName: Given{i}\n"
                   f"sn: Surname{i}\ndisplayName: Given{i} Surname{i}\nmail: user{i}@corp.example\ntitle: Engineer\n"
                   f"userAccountControl: 512\n{manager}\n")
    for g in range(n // 10):
        members = "".join(f"member: CN=Given{i} Surname{i},{staff}\n" for i in range(g * 10, g * 10 + 10))
        out.append(f"dn: CN=Team {g},{groups}\nobjectClass: group\nsAMAccountName: team{g}\ndescription: Team {g}\n"
                   f"groupType: -2147483646\n{members}\n")
    return "".join(out)


def password_b64():
    """A random password that meets AD's policy, as unicodePwd takes it (quoted UTF-16LE), in base64."""
    return base64.b64encode(f'"{secrets.token_urlsafe(12)}-Aa1!"'.encode("utf-16-le")).decode()


def user_lines(i, guids, people, control):
    """User i's attributes as Syncwright writes them into B (no manager, no password)."""
    return (f"objectClass: user\ncn: Given{i} Surname{i}\nmS-DS-ConsistencyGuid:: {guids[f'Given{i} Surname{i}']}\n"
            f"sAMAccountName: user{i}\nuserPrincipalName: user{i}@partner.example\ngivenName: Given{i}\nsn: Surname{i}\n"
            f"displayName: Given{i} Surname{i}\nmail: user{i}@corp.example\ntitle: Engineer\nuserAccountControl: {control}\n")


def manager_dn(i, people):
    return f"CN=Given{i - i % 10} Surname{i - i % 10},{people}"


def group_entries(n, guids, people, groups, header=""):
    members = lambda g: "".join(f"member: CN=Given{i} Surname{i},{people}\n" for i in range(g * 10, g * 10 + 10))
    return [f"dn: CN=Team {g},{groups}\n{header}objectClass: group\ncn: Team {g}\nmS-DS-ConsistencyGuid:: {guids[f'Team {g}']}\n"
            f"sAMAccountName: team{g}\ndescription: Team {g}\ngroupType: -2147483646\n{members(g)}\n" for g in range(n // 10)]


def copy_ldif(n, guids, people, groups):
    """The entries Syncwright writes into B, for ldapadd into C: the same attributes, each user
    one add with its password (quoted UTF-16LE) and enabled at once."""
    users = [f"dn: CN=Given{i} Surname{i},{people}\n{user_lines(i, guids, people, 512)}"
             f"{f'manager: {manager_dn(i, people)}' + chr(10) if i % 10 else ''}unicodePwd:: {password_b64()}\n\n" for i in range(n)]
    return "".join(users + group_entries(n, guids, people, groups))


def ordered_ldif(n, guids, people, groups):
    """The same entries in AD's order, as Syncwright writes them: each user added disabled, then
    one modify that sets its password and enables it; managers and groups after every user."""
    out = []
    for i in range(n):
        dn = f"dn: CN=Given{i} Surname{i},{people}\n"
        out.append(f"{dn}changetype: add\n{user_lines(i, guids, people, 514)}\n")
        out.append(f"{dn}changetype: modify\nreplace: unicodePwd\nunicodePwd:: {password_b64()}\n-\n"
                   f"replace: userAccountControl\nuserAccountControl: 512\n-\n\n")
    out += [f"dn: CN=Given{i} Surname{i},{people}\nchangetype: modify\nadd: manager\nmanager: {manager_dn(i, people)}\n-\n\n"
            for i in range(n) if i % 10]
    return "".join(out + group_entries(n, guids, people, groups, header="changetype: add\n"))


def guids_of(dc, *bases):
    """cn → objectGUID (base64), as ldapsearch prints it."""
    out = {}
    for base in bases:
        for record in dc.search(base, ["cn", "objectGUID"]).split("\n\n"):
            fields = dict(line.split(": ", 1) for line in record.splitlines() if ": " in line and not line.startswith("dn"))
            if "cn" in fields and "objectGUID:" in fields:
                out[fields["cn"]] = fields["objectGUID:"]
    return out


def config_repository(work, a, b):
    """examples/ad, pointed at A and B, committed and cloned bare; returns the origin's URL."""
    config = f"{work}/config"
    os.makedirs(config)
    with open(f"{work}/secret", "w") as f:
        f.write(ADMIN_PASSWORD)
    for name in ["connections.yaml", "jobs.yaml"]:
        with open(f"{ROOT}/examples/ad/{name}") as f:
            text = f.read()
        for old, new in [("ldaps://dc1.corp.example", a.url), ("ldaps://dc1.partner.example", b.url),
                         ("/etc/syncwright/corp-ca.pem", a.ca), ("/etc/syncwright/partner-ca.pem", b.ca),
                         ("CN=svc-syncwright,CN=Users,DC=corp,DC=example", a.admin),
                         ("CN=svc-syncwright,CN=Users,DC=partner,DC=example", b.admin),
                         ("{ env: CORP_AD_PASSWORD }", f"{{ file: {work}/secret }}"),
                         ("{ env: PARTNER_AD_PASSWORD }", f"{{ file: {work}/secret }}"),
                         ("DC=corp,DC=example", a.base), ("DC=partner,DC=example", b.base)]:
            text = text.replace(old, new)
        with open(f"{config}/{name}", "w") as f:
            f.write(text)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=config, env=GIT_ENV, check=True)
    subprocess.run(["git", "add", "-A"], cwd=config, env=GIT_ENV, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "bench"], cwd=config, env=GIT_ENV, check=True)
    subprocess.run(["git", "clone", "-q", "--bare", config, f"{work}/origin.git"], env=GIT_ENV, check=True)
    return f"file://{work}/origin.git"


def run(binary, home):
    start = time.perf_counter()
    proc = subprocess.run([binary, "run", "corp-to-partner-ad", "--home", home, "--format", "json"], capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"syncwright run failed: {proc.stderr.decode()[-2000:]}\n{proc.stdout.decode()[-2000:]}")
    return elapsed, [job["stats"] for job in json.loads(proc.stdout)["jobs"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    benchlib.add_binary_option(parser)
    args = parser.parse_args()
    benchlib.require_binary(args.binary)
    n, groups = args.users, args.users // 10
    results = {k: [] for k in ["load", "ldapadd", "ordered", "rerun", "search"]}
    work = tempfile.mkdtemp(prefix="syncwright-ad-bench-")
    dcs = []
    try:
        a = DC(f"{work}/a", "127.0.0.12", "CORP.BENCH", "CORPB")
        dcs.append(a)
        staff, corp_groups = f"OU=Staff,{a.base}", f"OU=Groups,{a.base}"
        with open(f"{work}/a.ldif", "w") as f:
            f.write(ou_ldif(staff, corp_groups) + source_ldif(n, staff, corp_groups))
        source = a.add(f"{work}/a.ldif")
        guids = guids_of(a, staff, corp_groups)
        assert len(guids) == n + groups, len(guids)
        print(f"binary: {args.binary}; domain A: {n} users and {groups} groups, loaded by ldapadd in {source:.1f} s; "
              f"{args.rounds} rounds, each into three fresh domains", flush=True)
        for number in range(1, args.rounds + 1):
            round_dir = f"{work}/round{number}"
            b = DC(f"{round_dir}/b", "127.0.0.13", "PARTNER.BENCH", "PARTNERB")
            dcs.append(b)
            c = DC(f"{round_dir}/c", "127.0.0.14", "COPY.BENCH", "COPYB")
            dcs.append(c)
            d = DC(f"{round_dir}/d", "127.0.0.15", "ORDER.BENCH", "ORDERB")
            dcs.append(d)
            for dc in (b, c, d):
                with open(f"{round_dir}/{dc.address}-ous.ldif", "w") as f:
                    f.write(ou_ldif(f"OU=Corp,{dc.base}", f"OU=Corp Groups,{dc.base}"))
                dc.add(f"{round_dir}/{dc.address}-ous.ldif")
            with open(f"{round_dir}/copy.ldif", "w") as f:
                f.write(copy_ldif(n, guids, f"OU=Corp,{c.base}", f"OU=Corp Groups,{c.base}"))
            with open(f"{round_dir}/ordered.ldif", "w") as f:
                f.write(ordered_ldif(n, guids, f"OU=Corp,{d.base}", f"OU=Corp Groups,{d.base}"))
            origin = config_repository(round_dir, a, b)
            home = f"{round_dir}/home"
            subprocess.run([args.binary, "init", origin, "--home", home], check=True, capture_output=True)
            subprocess.run([args.binary, "apply", "--home", home], check=True, capture_output=True)

            # First load, side by side, each into its own fresh domain, in an order that turns
            # each round: Syncwright; ldapadd of one add per entry; ldapmodify in AD's order.
            def syncwright_load():
                elapsed, stats = run(args.binary, home)
                assert stats[0]["created"] == n and stats[1]["created"] == groups, stats
                assert all(s["failed"] == 0 for s in stats), stats
                return elapsed
            loads = [("load", syncwright_load), ("ldapadd", lambda: c.add(f"{round_dir}/copy.ldif")),
                     ("ordered", lambda: d.add(f"{round_dir}/ordered.ldif"))]
            shift = (number - 1) % 3
            timings = {name: load() for name, load in loads[shift:] + loads[:shift]}
            load, ldapadd, ordered = timings["load"], timings["ldapadd"], timings["ordered"]

            # Rerun with nothing changed, side by side with ldapsearch of what the jobs read.
            rerun, stats = run(args.binary, home)
            assert all(s["created"] == s["updated"] == s["deleted"] == 0 for s in stats), stats
            assert stats[0]["unchanged"] == n and stats[1]["unchanged"] == groups, stats
            users = ["objectClass", "objectGUID", "cn", "sAMAccountName", "givenName", "sn", "displayName", "mail", "title",
                     "userAccountControl", "manager", "mS-DS-ConsistencyGuid", "userPrincipalName"]
            group_attributes = ["objectClass", "objectGUID", "cn", "sAMAccountName", "description", "groupType", "member",
                                "mS-DS-ConsistencyGuid"]
            start = time.perf_counter()
            a.search(staff, users)
            b.search(f"OU=Corp,{b.base}", users)
            a.search(corp_groups, group_attributes)
            b.search(f"OU=Corp Groups,{b.base}", group_attributes)
            search = time.perf_counter() - start
            for key, value in zip(results, [load, ldapadd, ordered, rerun, search]):
                results[key].append(value)
            print(f"round {number}: first load: syncwright run {load:.2f} s, ldapadd {ldapadd:.2f} s (ratio {ldapadd / load:.2f}x), "
                  f"ldapmodify in AD's order {ordered:.2f} s (ratio {ordered / load:.2f}x); "
                  f"rerun: syncwright run {rerun:.2f} s, ldapsearch of both domains {search:.2f} s (ratio {rerun / search:.2f}x)",
                  flush=True)
            for dc in (b, c, d):
                dc.stop()
                dcs.remove(dc)
            shutil.rmtree(round_dir, ignore_errors=True)
    finally:
        for dc in dcs:
            dc.stop()
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    objects = n + groups
    print(f"\nmedians of {args.rounds}:")
    print(f"  first load of {objects} objects: syncwright run {med['load']:.2f} s = {objects / med['load']:.0f} objects/s; "
          f"ldapadd {med['ldapadd']:.2f} s = {objects / med['ldapadd']:.0f} objects/s; ratio {med['ldapadd'] / med['load']:.2f}x "
          f"(goal >= 1.0); ldapmodify in AD's order {med['ordered']:.2f} s, ratio {med['ordered'] / med['load']:.2f}x")
    print(f"  rerun with no change: syncwright run {med['rerun']:.2f} s; ldapsearch of both domains {med['search']:.2f} s; "
          f"ratio {med['rerun'] / med['search']:.2f}x (goal <= 1.2)")


if __name__ == "__main__":
    main()
