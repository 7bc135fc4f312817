#!/usr/bin/env python3
"""Groups and references: a first load of users and groups, then a 1% membership change, into a
throwaway slapd on this machine.

100,000 users and 10,000 groups of 1 to 1,000 members (sizes spread evenly), plus one group of
every user, from two CSV files: a users job, then a groups job whose `member` column (logins)
resolves through the users job (`resolve: { job: users, by: login }`).

- First load: `syncwright run` of both jobs into an empty suffix, side by side with `ldapadd -f`
  of the same entries (users, then groups with their member DNs) into a second, equally empty
  suffix of the same server. Ratio = ldapadd's time / syncwright's (>= 1.0: at least as fast).
- A 1% membership change: 1% of the member positions of every group get another user (the
  group of everyone only loses 1%), and the collection runs again. The values sent are counted
  by the server itself (the accesslog overlay, `reqMod` of each modify), and compared with the
  values that changed (old and new lists compared as sets here; a one-member group whose member
  changes is one replace, one value sent for two changed). Its time is compared with an
  `ldapsearch` paging through the groups (cn and member), and with that paging plus an
  `ldapmodify` of the same change into the second suffix (the floor of reading and writing).
- Peak memory: the `syncwright run` process's maximum RSS (wait4), for both runs.

Both suffixes log their writes to the accesslog, so both loads pay for it. The server keeps
`member` values sorted (`sortvals member`, as OpenLDAP advises for large groups): without it,
each modify that adds to a group of N members costs the server O(N) per value. Each round starts
a fresh server; prints every round and the medians.

    swift build -c release --product syncwright
    python3 bench/groups_bench.py [--users 100000] [--groups 10000] [--rounds 3]
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
from benchlib import ROOT, commit_and_clone

SUFFIXES = ["dc=corp,dc=example", "dc=load,dc=example"]
PASSWORD = "sync-secret"


def start_slapd(folder, accesslog=True):
    """slapd with the groups' settings: sorted member values, and (unless told not to) an
    accesslog of every write, which the benchmark reads to count the values sent."""
    os.makedirs(f"{folder}/log")
    return benchlib.start_slapd(
        folder, SUFFIXES, PASSWORD, maxsize=17179869184, indexes="uid,employeeNumber,cn", ous=("People", "Groups"),
        log=f"{folder}/slapd.log", global_extra="moduleload accesslog\n",
        first_databases=f"""sortvals member

database mdb
maxsize 17179869184
suffix cn=accesslog
rootdn "cn=admin,cn=accesslog"
rootpw root-secret
directory {folder}/log
dbnosync
index reqStart eq
""", database_extra="overlay accesslog\nlogdb cn=accesslog\nlogops writes\n" if accesslog else "")


def memberships(users, groups, changed=False):
    """Each group's member logins (by user number). Group i has 1 + (i * 7919) % 1000 members, a
    run of users from a spread-out start; the last group holds every user. With `changed`, every
    100th member position holds the user just past the run instead (the last group drops them)."""
    out = []
    for i in range(groups):
        size = 1 + (i * 7919) % 1000
        start = (i * 104_729) % users
        members = [(start + k) % users for k in range(size)]
        if changed:
            members = [(start + size + k) % users if (i + k) % 100 == 0 else m for k, m in enumerate(members)]
        out.append((f"group{i}", members))
    everyone = list(range(users))
    if changed:
        everyone = [m for m in everyone if m % 100 != 0]
    out.append(("everyone", everyone))
    return out


def write_csvs(folder, users, groups, changed):
    with open(f"{folder}/users.csv", "w") as f:
        f.write("id,login,given,sn\n")
        f.writelines(f"{i},user{i},Given{i},Surname{i}\n" for i in range(users))
    with open(f"{folder}/groups.csv", "w") as f:
        f.write("name,members\n")
        for name, members in memberships(users, groups, changed):
            f.write(f"{name}," + ";".join(f"user{m}" for m in members) + "\n")


def load_ldif(path, users, groups):
    suffix = SUFFIXES[1]
    with open(path, "w") as f:
        for i in range(users):
            f.write(f"dn: uid=user{i},ou=People,{suffix}\nobjectClass: inetOrgPerson\nemployeeNumber: {i}\n"
                    f"uid: user{i}\ncn: Given{i} Surname{i}\nsn: Surname{i}\n\n")
        for name, members in memberships(users, groups):
            f.write(f"dn: cn={name},ou=Groups,{suffix}\nobjectClass: groupOfNames\ncn: {name}\n")
            f.writelines(f"member: uid=user{m},ou=People,{suffix}\n" for m in members)
            f.write("\n")


def change_ldif(path, users, groups):
    """The membership change as ldapmodify input for the second suffix: per changed group, a
    delete of the members that went and an add of those that came."""
    suffix = SUFFIXES[1]
    with open(path, "w") as f:
        for (name, before), (_, after) in zip(memberships(users, groups), memberships(users, groups, changed=True)):
            gone, came = sorted(set(before) - set(after)), sorted(set(after) - set(before))
            if not gone and not came:
                continue
            f.write(f"dn: cn={name},ou=Groups,{suffix}\nchangetype: modify\n")
            if gone:
                f.write("delete: member\n" + "".join(f"member: uid=user{m},ou=People,{suffix}\n" for m in gone) + "-\n")
            if came:
                f.write("add: member\n" + "".join(f"member: uid=user{m},ou=People,{suffix}\n" for m in came) + "-\n")
            f.write("\n")


def changed_values(users, groups):
    """How many member values the change adds or removes, and in how many groups."""
    before, after = memberships(users, groups), memberships(users, groups, changed=True)
    differences = [len(set(a) ^ set(b)) for (_, a), (_, b) in zip(before, after)]
    return sum(differences), sum(1 for d in differences if d)


def timed(argv):
    """Runs argv; returns (wall seconds, its peak RSS in MiB, its stdout)."""
    start = time.perf_counter()
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, stdout=out, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out.seek(0)
    err.seek(0)
    stdout = out.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed: {err.read().decode()[-2000:]}\n{stdout[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, stdout


def logged_values(url, groups_base):
    """Values of every modify the server logged for entries below `groups_base` (reqMod lines)."""
    out = subprocess.run(["ldapsearch", "-x", "-H", url, "-D", "cn=admin,cn=accesslog", "-w", "root-secret", "-LLL",
                          "-o", "ldif-wrap=no", "-b", "cn=accesslog", "(objectClass=auditModify)", "reqDN", "reqMod"],
                         capture_output=True, check=True).stdout.decode()
    # Per logged modify: `reqDN: cn=…` then `reqMod: member:+ uid=…` per value (a delete of every
    # value is `member:-` with nothing after).
    count, below = 0, False
    for line in out.splitlines():
        if line.startswith("dn:"):
            below = False
        elif line.startswith("reqDN:"):
            below = line.lower().endswith("," + groups_base.lower())
        elif below and line.startswith("reqMod: member:") and not line.rstrip().endswith(":-"):
            count += 1
    return count


def config(folder, url):
    repo = f"{folder}/config"
    os.makedirs(repo)
    people, groups = f"ou=People,{SUFFIXES[0]}", f"ou=Groups,{SUFFIXES[0]}"
    with open(f"{repo}/all.yaml", "w") as f:
        f.write(f"""apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: hr }}
spec: {{ type: csv, path: {folder}/users.csv }}
---
apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: teams }}
spec: {{ type: csv, path: {folder}/groups.csv }}
---
apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: corp }}
spec: {{ type: ldap, url: "{url}", baseDN: "{SUFFIXES[0]}", bindDN: "cn=sync,{SUFFIXES[0]}",
        passwordFrom: {{ file: {folder}/pw }}, timeout: 10m }}
---
apiVersion: syncwright.dev/v1
kind: Job
metadata: {{ name: users }}
spec:
  source: {{ connection: hr }}
  destination: {{ connection: corp, objectClass: [inetOrgPerson], container: "{people}", rdn: uid }}
  mappings:
    - {{ source: id, destination: employeeNumber, key: true }}
    - {{ source: login, destination: uid }}
    - {{ destination: cn, value: "{{{{given}}}} {{{{sn}}}}" }}
    - {{ source: sn, destination: sn }}
---
apiVersion: syncwright.dev/v1
kind: Job
metadata: {{ name: groups }}
spec:
  source: {{ connection: teams }}
  destination: {{ connection: corp, objectClass: [groupOfNames], container: "{groups}", rdn: cn }}
  mappings:
    - {{ source: name, destination: cn, key: true }}
    - {{ source: members, destination: member, delimiter: ";", resolve: {{ job: users, by: login }} }}
---
apiVersion: syncwright.dev/v1
kind: JobCollection
metadata: {{ name: load }}
spec: {{ jobs: [ {{ job: users }}, {{ job: groups }} ] }}
""")
    commit_and_clone(repo, f"{folder}/origin.git")
    return repo


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-accesslog", action="store_true",
                        help="no accesslog overlay: writes cost the server less, and the values sent are not counted")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/syncwright"))
    args = parser.parse_args()
    accesslog = not args.no_accesslog
    n, g = args.users, args.groups
    values = sum(len(m) for _, m in memberships(n, g))
    changed, touched = changed_values(n, g)
    print(f"binary: {args.binary}; {n:,} users, {g:,} groups + 1 of everyone = {values:,} member values; "
          f"the change touches {changed:,} values in {touched:,} groups; {args.rounds} rounds, each on a fresh slapd "
          f"(dbnosync, sortvals member, accesslog {'on' if accesslog else 'off'})")
    keys = ["load", "load_rss", "ldapadd", "delta", "delta_rss", "search", "sent", "modify", "groups_job"]
    results = {k: [] for k in keys}
    for round_number in range(1, args.rounds + 1):
        work = tempfile.mkdtemp(prefix="syncwright-groups-bench-")
        proc = None
        try:
            proc, url = start_slapd(work, accesslog)
            with open(f"{work}/pw", "w") as f:
                f.write(PASSWORD)
            write_csvs(work, n, g, changed=False)
            load_ldif(f"{work}/load.ldif", n, g)
            config(work, url)
            home = f"{work}/home"
            subprocess.run([args.binary, "init", f"file://{work}/origin.git", "--home", home], check=True, capture_output=True)
            subprocess.run([args.binary, "apply", "--home", home], check=True, capture_output=True)

            run = [args.binary, "run", "load", "--home", home, "--format", "json"]
            load, load_rss, out = timed(run)
            jobs = json.loads(out)["jobs"]
            assert jobs[0]["stats"]["created"] == n and jobs[1]["stats"]["created"] == g + 1, jobs
            assert all(j["stats"]["failed"] == 0 and j["stats"]["unresolved"] == 0 for j in jobs), jobs
            ldapadd, _, _ = timed(["ldapadd", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[1]}", "-w", PASSWORD,
                                      "-f", f"{work}/load.ldif"])

            groups_base = f"ou=Groups,{SUFFIXES[0]}"
            logged_before = logged_values(url, groups_base) if accesslog else 0
            write_csvs(work, n, g, changed=True)
            delta, delta_rss, out = timed(run)
            jobs = json.loads(out)["jobs"]
            groups_job = jobs[1]["durationMs"] / 1000
            assert jobs[0]["stats"]["unchanged"] == n and jobs[1]["stats"]["updated"] == touched, jobs
            sent = logged_values(url, groups_base) - logged_before if accesslog else 0
            change_ldif(f"{work}/change.ldif", n, g)
            modify, _, _ = timed(["ldapmodify", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[1]}", "-w", PASSWORD,
                                     "-f", f"{work}/change.ldif"])
            search, _, _ = timed(["ldapsearch", "-x", "-H", url, "-D", f"cn=sync,{SUFFIXES[0]}", "-w", PASSWORD, "-LLL",
                                     "-E", "pr=500/noprompt", "-b", groups_base, "(objectClass=groupOfNames)", "cn", "member"])
            for key, value in zip(keys, [load, load_rss, ldapadd, delta, delta_rss, search, sent, modify, groups_job]):
                results[key].append(value)
            print(f"round {round_number}: first load: syncwright run {load:.1f} s (peak {load_rss:.0f} MiB), "
                  f"ldapadd {ldapadd:.1f} s, ratio {ldapadd / load:.2f}x; 1% change: syncwright run {delta:.1f} s "
                  f"(peak {delta_rss:.0f} MiB; the groups job {groups_job:.1f} s), ldapsearch paging the groups {search:.1f} s, "
                  f"ratio {delta / search:.2f}x; ldapmodify of the same change {modify:.1f} s; " +
                  (f"values sent {sent:,} for {changed:,} changed ({sent / changed:.3f}x)" if accesslog else "values sent not counted"),
                  flush=True)
        finally:
            if proc:
                proc.kill()
                proc.wait()
            if not os.environ.get("KEEP"):
                shutil.rmtree(work, ignore_errors=True)
            else:
                print(f"kept {work}")
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"\nmedians of {args.rounds}:")
    print(f"  first load: syncwright run {med['load']:.1f} s, ldapadd {med['ldapadd']:.1f} s: ratio "
          f"{med['ldapadd'] / med['load']:.2f}x (goal >= 1.0)")
    sent_text = (f"values sent {med['sent']:,.0f} for {changed:,} changed: {med['sent'] / changed:.3f}x (goal <= 1.1)"
                 if accesslog else "values sent not counted (no accesslog)")
    print(f"  1% change: syncwright run {med['delta']:.1f} s, ldapsearch paging {med['search']:.1f} s: ratio "
          f"{med['delta'] / med['search']:.2f}x (goal <= 1.5); {sent_text}")
    floor = med["search"] + med["modify"]
    print(f"  the groups job alone {med['groups_job']:.1f} s: {med['groups_job'] / med['search']:.2f}x the paging; "
          f"the floor of reading the groups and writing the change (ldapsearch + ldapmodify {med['modify']:.1f} s) "
          f"{floor:.1f} s: the run is {med['delta'] / floor:.2f}x it, the groups job {med['groups_job'] / floor:.2f}x")
    print(f"  peak memory: first load {med['load_rss']:.0f} MiB, change {med['delta_rss']:.0f} MiB (goal <= 1024)")


if __name__ == "__main__":
    main()
