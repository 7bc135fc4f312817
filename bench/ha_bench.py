#!/usr/bin/env python3
"""Replicas benchmark: the overhead per fire with 1 SQLite reconciler and with 3 replicas on one
PostgreSQL store, side by side in one run, and the failover time.

The config repository is reconcile_bench's: N collections (one small CSV job each) and N
schedules, the first D firing every minute, the rest once a day. Then, one after the other:
  1. SQLite: one home, `reconcile --interval 1h` through --rounds minute boundaries;
  2. PostgreSQL: a throwaway server (initdb into the work folder, as `nobody` when run as root),
     3 homes made with `init --state`, 3 reconcilers; the first holds the store and runs the
     fires, the others stand by. The same rounds.
From each holder's log (`pass … ms=`, `run finished … cpuMs= jobsCpuMs=`): the pass that decided
the due fires and started the runs, plus the runners' bookkeeping (CPU outside jobs) summed over
the D runs = the scheduling overhead; divided by D, the overhead per fire.

Then the failover: 10 s before a minute boundary the holder is killed (SIGKILL); the D fires of
that minute come due while no replica holds the store. Measured: from the kill to the first of
those runs starting on another replica (its startedAt in the store), and from the fire time to it.
The lease is --lease (default 15s).

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


def rounds_of(binary, homes, work, name, rounds, due):
    """Starts a reconciler per home (the first holds the store), lets `rounds` minute boundaries
    pass, stops them; the holder's complete rounds."""
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
    return [r for r in parse_rounds(logs[0]) if r["runs"] == due]


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
            "1 reconciler, SQLite": rounds_of(args.binary, [sqlite_home], args.work, "sqlite", args.rounds, args.due),
            "3 replicas, PostgreSQL (the holder)": rounds_of(args.binary, replica_homes, args.work, "postgres", args.rounds,
                                                             args.due),
        }
        print(f"| {args.collections} scheduled collections, {args.due} due at once (medians) | "
              + " | ".join(results) + " |")
        print("|---|" + "---|" * len(results))

        def row(name, value, unit="ms"):
            cells = [f"{statistics.median([value(r) for r in rounds]):.1f} {unit} ({len(rounds)} rounds)" if rounds else "n/a"
                     for rounds in results.values()]
            print(f"| {name} | " + " | ".join(cells) + " |")
        row("the pass: decide the due fires, record them, start the runs", lambda r: r["pass"])
        row(f"runner bookkeeping, summed over the {args.due} runs", lambda r: r["overhead"])
        row("scheduling overhead (pass + bookkeeping)", lambda r: r["pass"] + r["overhead"])
        row("**overhead per fire**", lambda r: (r["pass"] + r["overhead"]) / args.due)
        row(f"CPU time inside jobs, summed over the {args.due} runs", lambda r: r["jobs"])
        sqlite_rounds, pg_rounds = results.values()
        if sqlite_rounds and pg_rounds:
            ratio = (statistics.median([r["pass"] + r["overhead"] for r in pg_rounds])
                     / statistics.median([r["pass"] + r["overhead"] for r in sqlite_rounds]))
            print(f"\nPostgreSQL holder / SQLite, overhead per fire: **{ratio:.2f}×**")

        # Failover: the holder killed 10 s before the minute; that minute's fires come due meanwhile.
        logs, daemons = [], []
        for index, home in enumerate(replica_homes):
            log = os.path.join(args.work, f"failover-{index}.log")
            logs.append(log)
            daemons.append(subprocess.Popen([args.binary, "reconcile", "--interval", "1h", "--home", home],
                                            stdout=subprocess.DEVNULL, stderr=open(log, "w")))
            time.sleep(2)
        try:
            sleep_until_second(50)
            killed = time.time()
            daemons[0].send_signal(signal.SIGKILL)
            daemons[0].wait()
            fire = killed - killed % 60 + 60
            time.sleep(max(0, fire - time.time()) + 40)
            first = psql(port, f"SELECT min(startedAt) FROM runs WHERE startedAt > {killed}", "sw")
        finally:
            for daemon in daemons[1:]:
                daemon.send_signal(signal.SIGTERM)
            for daemon in daemons[1:]:
                daemon.wait(timeout=120)
        if not first:
            print("\nfailover: no run started after the kill within 40 s of the fire time")
        else:
            started = float(first)
            print(f"\nfailover (lease {args.lease}): the holder killed 10 s before a fire time; the first of that minute's "
                  f"runs started on another replica {started - killed:.1f} s after the kill, {started - fire:.1f} s after the "
                  "fire time")
    finally:
        server.send_signal(signal.SIGQUIT)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
