#!/usr/bin/env python3
"""LDAP connector: first load and delta, against a throwaway slapd on this machine.

First load: N users from a CSV into an empty suffix by `syncwright run`, side by side with
`ldapadd -f` of the equivalent LDIF into a second, equally empty suffix of the same server.
Delta: 1% of the rows change and the job runs again, side by side with `ldapsearch` paging
through the whole destination. Both tools bind as the same kind of service account. The
server's ceiling on this machine is measured too: the same load split over --parallel ldapadd
processes into a third empty suffix. Each round starts a fresh server; prints every round (with
the CPU seconds of each client and of slapd meanwhile) and the medians.

    swift build -c release --product syncwright
    python3 bench/ldap_bench.py [--users 100000] [--rounds 3] [--nosync] [--max-outstanding 32] [--parallel 4]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import benchlib
from benchlib import GIT_ENV, ROOT

SUFFIXES = ["dc=corp,dc=example", "dc=load,dc=example", "dc=par,dc=example"]
PASSWORD = "sync-secret"


def start_slapd(folder, nosync):
    return benchlib.start_slapd(folder, SUFFIXES, PASSWORD, maxsize=4294967296, indexes="uid,employeeNumber", nosync=nosync)


def rows(n, changed=frozenset()):
    yield "id,login,given,sn,mail,title,phone\n"
    for i in range(n):
        title = "Principal Engineer" if i in changed else "Engineer"
        yield f"{i},user{i},Given{i},Surname{i},user{i}@corp.example,{title},+49 30 {i:07d}\n"


def person_ldif(i, suffix):
    return (f"dn: uid=user{i},ou=People,{suffix}\nobjectClass: inetOrgPerson\nemployeeNumber: {i}\nuid: user{i}\n"
            f"cn: Given{i} Surname{i}\ngivenName: Given{i}\nsn: Surname{i}\nmail: user{i}@corp.example\n"
            f"title: Engineer\ntelephoneNumber: +49 30 {i:07d}\n\n")


def git(args, cwd):
    subprocess.run(["git"] + args, cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def server_cpu(pid):
    """CPU seconds (user + system) that process `pid` has used so far, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(argv, server):
    """Runs argv; returns (wall seconds, its CPU seconds, the server's CPU seconds meanwhile, stdout)."""
    def children():
        usage = os.times()
        return usage.children_user + usage.children_system
    before, server_before = children(), server_cpu(server.pid)
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:2])} failed: {proc.stderr.decode()[-2000:]}\n{proc.stdout.decode()[-2000:]}")
    return elapsed, children() - before, server_cpu(server.pid) - server_before, proc.stdout.decode()


def run(binary, home, server):
    wall, cpu, server_used, out = timed([binary, "run", "load", "--home", home, "--format", "json"], server)
    job = json.loads(out)["jobs"][0]
    return wall, job["durationMs"] / 1000, job["stats"], cpu, server_used


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-outstanding", type=int, default=32, help="the connection's maxOutstanding")
    parser.add_argument("--parallel", type=int, default=4,
                        help="how many ldapadd processes measure the server's ceiling (default 4)")
    parser.add_argument("--nosync", action="store_true", help="slapd does not fsync each write (dbnosync)")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/syncwright"))
    args = parser.parse_args()
    n = args.users
    results = {k: [] for k in ["run", "job", "ldapadd", "parallel", "delta_run", "delta_job", "search", "cpu", "server",
                                "ldapadd_cpu", "ldapadd_server", "delta_cpu", "delta_server", "search_cpu", "search_server"]}
    print(f"binary: {args.binary}; {n} users; {args.rounds} rounds, each on a fresh slapd"
          f"{' with dbnosync' if args.nosync else ' (fsync on every write)'}")
    for round_number in range(1, args.rounds + 1):
        work = tempfile.mkdtemp(prefix="syncwright-ldap-bench-")
        proc = None
        try:
            proc, url = start_slapd(work, args.nosync)
            csv = f"{work}/hr.csv"
            with open(csv, "w") as f:
                f.writelines(rows(n))
            with open(f"{work}/load.ldif", "w") as f:
                f.writelines(person_ldif(i, SUFFIXES[1]) for i in range(n))
            for part in range(args.parallel):
                with open(f"{work}/part{part}.ldif", "w") as f:
                    f.writelines(person_ldif(i, SUFFIXES[2]) for i in range(part, n, args.parallel))
            with open(f"{work}/pw", "w") as f:
                f.write(PASSWORD)
            config = f"{work}/config"
            os.makedirs(config)
            with open(f"{config}/all.yaml", "w") as f:
                f.write(f"""apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: hr }}
spec: {{ type: csv, path: {csv} }}
---
apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: corp }}
spec: {{ type: ldap, url: "{url}", baseDN: "{SUFFIXES[0]}", bindDN: "cn=sync,{SUFFIXES[0]}",
        passwordFrom: {{ file: {work}/pw }}, timeout: 5m, maxOutstanding: {args.max_outstanding} }}
---
apiVersion: syncwright.dev/v1
kind: Job
metadata: {{ name: load }}
spec:
  source: {{ connection: hr }}
  destination: {{ connection: corp, objectClass: [inetOrgPerson], container: "ou=People,{SUFFIXES[0]}", rdn: uid }}
  mappings:
    - {{ source: id, destination: employeeNumber, key: true }}
    - {{ source: login, destination: uid }}
    - {{ destination: cn, value: "{{{{given}}}} {{{{sn}}}}" }}
    - {{ source: given, destination: givenName }}
    - {{ source: sn, destination: sn }}
    - {{ source: mail, destination: mail }}
    - {{ source: title, destination: title }}
    - {{ source: phone, destination: telephoneNumber }}
---
apiVersion: syncwright.dev/v1
kind: JobCollection
metadata: {{ name: load }}
spec: {{ jobs: [ {{ job: load }} ] }}
""")
            git(["init", "-q", "-b", "main"], config)
            git(["add", "-A"], config)
            git(["commit", "-q", "-m", "bench"], config)
            git(["clone", "-q", "--bare", config, f"{work}/origin.git"], work)
            home = f"{work}/home"
            subprocess.run([args.binary, "init", f"file://{work}/origin.git", "--home", home], check=True, capture_output=True)
            subprocess.run([args.binary, "apply", "--home", home], check=True, capture_output=True)

            wall, job, stats, cpu, server = run(args.binary, home, proc)
            assert stats["created"] == n and stats["failed"] == 0, stats
            ldapadd, ldapadd_cpu, ldapadd_server, _ = timed(
                ["ldapadd", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[1]}", "-w", PASSWORD, "-f", f"{work}/load.ldif"], proc)

            # The server's ceiling on this machine: the same load split over parallel ldapadd processes.
            start = time.perf_counter()
            loaders = [subprocess.Popen(["ldapadd", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[2]}", "-w", PASSWORD,
                                         "-f", f"{work}/part{part}.ldif"], stdout=subprocess.DEVNULL)
                       for part in range(args.parallel)]
            if any(loader.wait() != 0 for loader in loaders):
                raise SystemExit("a parallel ldapadd failed")
            parallel = time.perf_counter() - start

            changed = frozenset(range(0, n, 100))  # 1%
            with open(csv, "w") as f:
                f.writelines(rows(n, changed))
            delta_wall, delta_job, delta_stats, delta_cpu, delta_server = run(args.binary, home, proc)
            assert delta_stats["updated"] == len(changed) and delta_stats["unchanged"] == n - len(changed), delta_stats
            search, search_cpu, search_server, _ = timed(
                ["ldapsearch", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[0]}", "-w", PASSWORD, "-LLL",
                 "-E", "pr=500/noprompt", "-b", f"ou=People,{SUFFIXES[0]}", "(objectClass=*)",
                 "objectClass", "employeeNumber", "uid", "cn", "givenName", "sn", "mail", "title", "telephoneNumber"], proc)
            for key, value in zip(results, [wall, job, ldapadd, parallel, delta_wall, delta_job, search,
                                            cpu, server, ldapadd_cpu, ldapadd_server,
                                            delta_cpu, delta_server, search_cpu, search_server]):
                results[key].append(value)
            print(f"round {round_number}: first load: syncwright run {wall:.2f} s (job {job:.2f} s; CPU {cpu:.2f} s, "
                  f"slapd {server:.2f} s), ldapadd {ldapadd:.2f} s (CPU {ldapadd_cpu:.2f} s, slapd {ldapadd_server:.2f} s), "
                  f"{args.parallel} parallel ldapadd {parallel:.2f} s; "
                  f"delta: syncwright run {delta_wall:.2f} s (job {delta_job:.2f} s; CPU {delta_cpu:.2f} s, "
                  f"slapd {delta_server:.2f} s), ldapsearch paging {search:.2f} s (CPU {search_cpu:.2f} s, "
                  f"slapd {search_server:.2f} s)", flush=True)
        finally:
            if proc:
                proc.kill()
                proc.wait()
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmedians of {args.rounds}:")
    print(f"  first load: syncwright run {med['run']:.2f} s = {n / med['run']:,.0f} entries/s "
          f"(the job alone {med['job']:.2f} s = {n / med['job']:,.0f}/s); "
          f"ldapadd {med['ldapadd']:.2f} s = {n / med['ldapadd']:,.0f} entries/s; "
          f"ratio {med['ldapadd'] / med['run']:.2f}x (job: {med['ldapadd'] / med['job']:.2f}x)")
    print(f"  ceiling: {args.parallel} parallel ldapadd {med['parallel']:.2f} s = {n / med['parallel']:,.0f} entries/s "
          f"= {med['ldapadd'] / med['parallel']:.2f}x one ldapadd")
    print(f"  delta (1%): syncwright run {med['delta_run']:.2f} s (job {med['delta_job']:.2f} s); ldapsearch paging "
          f"{med['search']:.2f} s; ratio {med['delta_run'] / med['search']:.2f}x (job: {med['delta_job'] / med['search']:.2f}x)")
    print(f"  CPU seconds (the client; slapd meanwhile): first load: syncwright {med['cpu']:.2f}; {med['server']:.2f}, "
          f"ldapadd {med['ldapadd_cpu']:.2f}; {med['ldapadd_server']:.2f}. delta: syncwright {med['delta_cpu']:.2f}; "
          f"{med['delta_server']:.2f}, ldapsearch {med['search_cpu']:.2f}; {med['search_server']:.2f}")


if __name__ == "__main__":
    main()
