#!/usr/bin/env python3
"""Notification benchmark: 1,000 collections fail in the same minute, through a dedupe window.

Two config repositories, the same but for notifications: N collections, each one job that fails
(its CSV lacks a mapped column) and a schedule that fires at start-up. In "notifying", each
collection notifies a webhook (a local receiver, Tests/Fakes/webhook_server.py) on jobFails,
with repeatAfter 1h. Each round runs `syncwright reconcile --once` on both homes, alternately:
N runs start at once and fail. The homes take turns going first.

Each round also publishes the rounds' reports to the reports branch, the same for both homes;
at 1,000 collections that takes minutes (building 1,000 report commits), so the figures in
docs/performance.md are for --collections 100 until publishing is faster.

Measures, per home and round:
  - the runs: from the first run's start to the last run's end (state.sqlite), which holds
    deciding and queueing the notifications (in the run's transaction);
  - the whole command (reconcile --once: the runs, publishing, and sending what is due);
  - the webhooks received.
Round 1 of "notifying" sends one message per collection; later rounds repeat the same failure
inside the window, and must send nothing.

Usage: bench/notify_bench.py [--collections 1000] [--rounds 3] [--work DIR] [--binary PATH]
"""
import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time

from benchlib import add_binary_option, commit_and_clone, require_binary

HEADER = "apiVersion: syncwright.dev/v1\n"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(repo, collections, notify, people):
    for folder in ("jobs", "collections"):
        os.makedirs(os.path.join(repo, folder), exist_ok=True)
    with open(people, "w") as f:
        f.write("id,name\n1,one\n2,two\n")            # no `login`: every job fails before writing
    with open(os.path.join(repo, "base.yaml"), "w") as f:
        # A file outside the repository, so that validation cannot see its header.
        f.write(HEADER + f"kind: Connection\nmetadata: {{ name: people }}\nspec: {{ type: csv, path: {people} }}\n")
        f.write("---\n" + HEADER + "kind: Connection\nmetadata: { name: out }\nspec: { type: csv, path: out.csv }\n")
        f.write("---\n" + HEADER + "kind: Schedule\nmetadata: { name: start }\nspec:\n  targets: ["
                + ", ".join(f"c-{c:05d}" for c in range(collections)) + "]\n  triggers: [ { atStartup: true } ]\n")
        if notify:
            f.write("---\n" + HEADER + "kind: NotificationChannel\nmetadata: { name: hook }\n"
                    "spec: { type: webhook, urlFrom: { env: HOOK_URL }, format: json }\n")
    for c in range(collections):
        name = f"c-{c:05d}"
        with open(os.path.join(repo, f"jobs/{name}.yaml"), "w") as f:
            f.write(f"{HEADER}kind: Job\nmetadata: {{ name: {name} }}\nspec:\n  source: {{ connection: people }}\n"
                    "  destination: { connection: out }\n  mappings:\n"
                    "    - { source: id, destination: id, key: true }\n    - { source: login, destination: login }\n")
        with open(os.path.join(repo, f"collections/{name}.yaml"), "w") as f:
            f.write(f"{HEADER}kind: JobCollection\nmetadata: {{ name: {name} }}\nspec:\n  jobs: [ {{ job: {name} }} ]\n")
            if notify:
                f.write("  notifications: { when: [jobFails], channels: [hook], repeatAfter: 1h }\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default="/tmp/syncwright-notify-bench")
    add_binary_option(parser)
    args = parser.parse_args()
    require_binary(args.binary)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)

    posts = os.path.join(args.work, "posts")
    os.makedirs(posts)
    receiver = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "Tests/Fakes/webhook_server.py"), "--dir", posts,
                                 "--port-file", os.path.join(args.work, "port")], stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(os.path.join(args.work, "port")):
            time.sleep(0.05)
        port = open(os.path.join(args.work, "port")).read().strip()
        env = dict(os.environ, HOOK_URL=f"http://127.0.0.1:{port}/hook")
        homes = {}
        for side in ("silent", "notifying"):
            repo, origin = os.path.join(args.work, f"{side}-repo"), os.path.join(args.work, f"{side}.git")
            os.makedirs(repo)
            generate(repo, args.collections, side == "notifying", os.path.join(args.work, "people.csv"))
            commit_and_clone(repo, origin)
            home = os.path.join(args.work, f"{side}-home")
            subprocess.run([args.binary, "init", "file://" + origin, "--home", home], check=True, stdout=subprocess.DEVNULL)
            subprocess.run([args.binary, "apply", "--home", home], check=True, stdout=subprocess.DEVNULL)
            homes[side] = home

        def received():
            return len([f for f in os.listdir(posts) if f.endswith(".json")])

        results = {side: {"runs": [], "command": []} for side in homes}
        sent = []
        for round_ in range(args.rounds):
            # Which home goes first alternates: the one that goes second starts while the disk
            # still writes back what the first published.
            order = list(homes.items()) if round_ % 2 == 0 else list(reversed(homes.items()))
            for side, home in order:
                before = received()
                with sqlite3.connect(os.path.join(home, "state.sqlite")) as db:
                    known = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                start = time.perf_counter()
                done = subprocess.run([args.binary, "reconcile", "--once", "--home", home], env=env,
                                      capture_output=True, text=True)
                results[side]["command"].append(time.perf_counter() - start)
                if done.returncode != 0:
                    sys.exit(f"reconcile --once ({side}) exited {done.returncode}: {done.stderr[-2000:]}")
                with sqlite3.connect(os.path.join(home, "state.sqlite")) as db:
                    rows = db.execute("SELECT startedAt, finishedAt, status FROM runs ORDER BY startedAt LIMIT -1 OFFSET ?",
                                      (known,)).fetchall()
                if len(rows) != args.collections or any(r[2] not in ("failed", "aborted") for r in rows):
                    sys.exit(f"{side}: expected {args.collections} failed runs, found {len(rows)}")
                results[side]["runs"].append(max(r[1] for r in rows) - min(r[0] for r in rows))
                if side == "notifying":
                    sent.append(received() - before)
        expected = [args.collections] + [0] * (args.rounds - 1)
        if sent != expected:
            sys.exit(f"webhooks received per round: {sent}, expected {expected}")
    finally:
        receiver.kill()

    print(f"| {args.collections} collections failing at once | runs, first start → last end | reconcile --once, whole |")
    print("|---|---|---|")
    for side in homes:
        r, c = results[side]["runs"], results[side]["command"]
        print(f"| {side} | {statistics.median(r):.2f} s ({', '.join(f'{x:.2f}' for x in r)}) "
              f"| {statistics.median(c):.2f} s ({', '.join(f'{x:.2f}' for x in c)}) |")
    runs_ratio = statistics.median(results["notifying"]["runs"]) / statistics.median(results["silent"]["runs"])
    print(f"\nwebhooks received per round: {sent} (one per collection, then none inside the window)")
    print(f"runs with notifications / without: {runs_ratio:.3f}× (goal: at most 1.05×)")


if __name__ == "__main__":
    main()
