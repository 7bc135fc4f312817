#!/usr/bin/env python3
"""Replicas benchmark: the overhead per fire with 1 SQLite reconciler and with 3 replicas on one
PostgreSQL store, side by side in one run, and the failover time.

The config repository is reconcile_bench's: N collections (one small CSV job each) and N
schedules, the first D firing every minute, the rest once a day. Then, one after the other:
  1. SQLite: one home, `reconcile --interval 1h` through --rounds minute boundaries;
  2. PostgreSQL: a throwaway server (initdb into the work folder, as `nobody` when run as root),
     3 homes made with `init --state`, 3 reconcilers sharing the fires (the first leads). The
     same rounds.
From each reconciler's log (`pass … ms= publishMs=`, `run finished … cpuMs= jobsCpuMs=`), over
all its rounds: the passes that decided due fires and started runs (less the reports they
published: the leader's work), plus the runners' bookkeeping (CPU outside jobs) = its
scheduling overhead; divided by the runs it ran, its overhead per fire.

Then the failover: 10 s before a minute boundary the leader is killed (SIGKILL). Measured: from
the kill until another replica holds the lead (the store's storeLease, polled), and from that
minute's fire time to the first of its runs starting (its startedAt in the store). The lease is
--lease (default 15s).

Prints Markdown tables of medians. Never fails on timing.

Usage: bench/ha_bench.py [--collections 10000] [--due 100] [--rounds 3] [--lease 15s] [--work DIR]
"""
import argparse
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

from benchlib import add_binary_option, commit_and_clone, require_binary
from reconcile_bench import generate, parse_rounds, sleep_until_second

PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres(folder):
    """initdb and postgres on a free port (as nobody when root); returns (process, port)."""
    data, sockets = os.path.join(folder, "data"), os.path.join(folder, "sockets")
    os.makedirs(data)
    os.makedirs(sockets)
    prefix = []
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in (folder, data, sockets):
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--"]
    subprocess.run(prefix + [f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    # The server keeps its defaults (fsync on): a replica's store as in production.
    server = subprocess.Popen(prefix + [f"{PG_BIN}/postgres", "-D", data, "-p", str(port), "-k", sockets,
                                        "-c", "listen_addresses=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(folder, "postgres.log"), "w"))
    for _ in range(300):
        if subprocess.run([f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]).returncode == 0:
            return server, port
        time.sleep(0.1)
    sys.exit("postgres did not start")


def psql(port, sql, database="postgres"):
    return subprocess.run([f"{PG_BIN}/psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                           "-d", database, "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def rounds_of(binary, homes, work, name, rounds):
    """Starts a reconciler per home (the first leads), lets `rounds` minute boundaries pass,
    stops them; per reconciler, its scheduling work over all rounds."""
    logs, daemons = [], []
    for index, home in enumerate(homes):
        log = os.path.join(work, f"{name}-{index}.log")
        logs.append(log)
        daemons.append(subprocess.Popen([binary, "reconcile", "--interval", "1h", "--home", home],
                                        stdout=subprocess.DEVNULL, stderr=open(log, "w")))
        time.sleep(2)
    try:
        for _ in range(rounds):
            sleep_until_second(45)
        sleep_until_second(45)
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(timeout=120)
    totals = []
    for log in logs:
        passes = parse_rounds(log)
        totals.append({key: sum(r[key] for r in passes) for key in ("pass", "passPublish", "overhead", "jobs", "runs")}
                      | {"passes": len(passes)})
    return totals


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lease", default="15s")
    parser.add_argument("--work", default="/tmp/syncwright-ha-bench")
    add_binary_option(parser)
    args = parser.parse_args()
    require_binary(args.binary)

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    repo, origin = os.path.join(args.work, "config"), os.path.join(args.work, "config.git")
    generate(repo, args.collections, args.due, destinations=args.due)
    commit_and_clone(repo, origin)
    server, port = start_postgres(os.path.join(args.work, "pg"))
    try:
        psql(port, "CREATE DATABASE sw")
        url = f"postgresql://postgres@127.0.0.1:{port}/sw"
        sqlite_home = os.path.join(args.work, "sqlite")
        subprocess.run([args.binary, "init", "file://" + origin, "--home", sqlite_home], check=True, stdout=subprocess.DEVNULL)
        replica_homes = [os.path.join(args.work, f"replica-{i}") for i in range(3)]
        for home in replica_homes:
            subprocess.run([args.binary, "init", "file://" + origin, "--state", url, "--state-lease", args.lease, "--home", home],
                           check=True, stdout=subprocess.DEVNULL)
        t = time.perf_counter()
        for home in (sqlite_home, replica_homes[0]):
            subprocess.run([args.binary, "apply", "--home", home], check=True, stdout=subprocess.DEVNULL)
        print(f"generated and applied {args.collections} collections twice in {time.perf_counter() - t:.1f}s", file=sys.stderr)

        results = {
            "1 reconciler, SQLite": rounds_of(args.binary, [sqlite_home], args.work, "sqlite", args.rounds),
            "3 replicas, PostgreSQL": rounds_of(args.binary, replica_homes, args.work, "postgres", args.rounds),
        }
        columns = [("SQLite", results["1 reconciler, SQLite"][0])] + [
            (f"replica {i + 1}" + (" (leads)" if i == 0 else ""), t) for i, t in enumerate(results["3 replicas, PostgreSQL"])]
        print(f"| {args.collections} scheduled collections, {args.due} due each minute, {args.rounds} minutes | "
              + " | ".join(name for name, _ in columns) + " |")
        print("|---|" + "---|" * len(columns))

        def row(name, value, unit="ms"):
            print(f"| {name} | " + " | ".join(f"{value(t):.1f} {unit}".rstrip() if t["runs"] else "n/a" for _, t in columns) + " |")
        row("runs it ran", lambda t: t["runs"], "")
        row("passes that started runs", lambda t: t["passes"], "")
        row("those passes: decide the due fires, record them, start the runs", lambda t: t["pass"] - t["passPublish"])
        row("(and in them, publishing reports: the leader's work, not a fire's)", lambda t: t["passPublish"])
        row("runner bookkeeping, summed over its runs", lambda t: t["overhead"])
        row("**overhead per fire**", lambda t: (t["pass"] - t["passPublish"] + t["overhead"]) / t["runs"])
        base = columns[0][1]
        if base["runs"]:
            per_fire = (base["pass"] - base["passPublish"] + base["overhead"]) / base["runs"]
            ratios = [((t["pass"] - t["passPublish"] + t["overhead"]) / t["runs"]) / per_fire for _, t in columns[1:] if t["runs"]]
            print("\nreplica / SQLite, overhead per fire: " + ", ".join(f"**{r:.2f}×**" for r in ratios))

        # Failover: the leader killed 10 s before the minute; that minute's fires come due meanwhile.
        logs, daemons = [], []
        for index, home in enumerate(replica_homes):
            log = os.path.join(args.work, f"failover-{index}.log")
            logs.append(log)
            daemons.append(subprocess.Popen([args.binary, "reconcile", "--interval", "1h", "--home", home],
                                            stdout=subprocess.DEVNULL, stderr=open(log, "w")))
            time.sleep(2)
        try:
            sleep_until_second(50)
            leader = psql(port, "SELECT holder FROM storeLease", "sw")
            killed = time.time()
            daemons[0].send_signal(signal.SIGKILL)
            daemons[0].wait()
            fire = killed - killed % 60 + 60
            led = None
            while time.time() < killed + 120:
                holder = psql(port, "SELECT holder FROM storeLease WHERE leaseUntil > EXTRACT(EPOCH FROM clock_timestamp())", "sw")
                if holder and holder != leader:
                    led = time.time()
                    break
                time.sleep(0.1)
            time.sleep(max(0, fire + 40 - time.time()))
            first = psql(port, f"SELECT min(startedAt) FROM runs WHERE startedAt > {killed}", "sw")
        finally:
            for daemon in daemons[1:]:
                daemon.send_signal(signal.SIGTERM)
            for daemon in daemons[1:]:
                daemon.wait(timeout=120)
        print(f"\nfailover (lease {args.lease}): the leader killed 10 s before a fire time; "
              + (f"another replica led {led - killed:.1f} s after the kill; " if led else "no other replica led within 120 s; ")
              + (f"the first of that minute's runs started {float(first) - fire:.1f} s after the fire time"
                 if first else "no run started within 40 s of the fire time"))
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
