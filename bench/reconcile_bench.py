#!/usr/bin/env python3
"""Reconcile benchmark: 10,000 scheduled collections, of which 100 are due at once.

Builds a config repository with N collections (one small CSV job each) and N schedules. The
schedules of the first D collections fire every minute (`cron: "* * * * *"`); the others fire once
a day at a time far from now. It applies it, then starts `syncwright reconcile --interval 1h` (the
release binary) and lets it handle --rounds minute boundaries, each with D collections due at once.

Reports, per round, from the daemon's own log lines:
  - the pass that decided the due fires and started the runs (`pass ... ms=`: scheduling proper,
    over all N stored schedules);
  - per run, the CPU time of its thread, whole and inside jobs (`run finished ... cpuMs= jobsCpuMs=`);
    the difference is the runner's bookkeeping (reading the stored specs, recording the run). CPU
    time, because D runs started at once share the cores, which inflates every wall time alike;
  - scheduling overhead = the pass + the bookkeeping summed over the D runs: all the time not spent
    in jobs, added up as if nothing overlapped (an upper bound);
  - the wall time from the fire time to the end of the last of the D runs (from state.sqlite);
  - publishing the D reports, in the pass the end of the runs wakes (reported apart).
And the idle daemon's memory (VmRSS from /proc), sampled 15 s before each minute boundary: before
the first round, and between rounds.

Prints a Markdown table of medians over the rounds. Never fails on timing.

Usage: bench/reconcile_bench.py [--collections 10000] [--due 100] [--rounds 3] [--work DIR]
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

from benchlib import add_binary_option, commit_and_clone, require_binary

HEADER = "apiVersion: syncwright.dev/v1\n"


def generate(repo, collections, due, destinations):
    for folder in ("jobs", "collections", "schedules", "data"):
        os.makedirs(os.path.join(repo, folder), exist_ok=True)
    with open(os.path.join(repo, "data/people.csv"), "w") as f:
        f.write("id,name\n" + "".join(f"{i},person {i}\n" for i in range(1, 11)))
    with open(os.path.join(repo, "connections.yaml"), "w") as f:
        f.write(HEADER + "kind: Connection\nmetadata: { name: people }\nspec: { type: csv, repoPath: data/people.csv }\n")
        for d in range(destinations):
            f.write(f"---\n{HEADER}kind: Connection\nmetadata: {{ name: out-{d:03d} }}\n"
                    f"spec: {{ type: csv, path: out/out-{d:03d}.csv }}\n")
    now = datetime.datetime.now(datetime.timezone.utc)
    for c in range(collections):
        name = f"c-{c:05d}"
        with open(os.path.join(repo, f"jobs/{name}.yaml"), "w") as f:
            f.write(f"{HEADER}kind: Job\nmetadata: {{ name: {name} }}\nspec:\n"
                    f"  source: {{ connection: people }}\n"
                    f"  destination: {{ connection: out-{c % destinations:03d} }}\n"
                    "  mappings:\n    - { source: id, destination: id, key: true }\n"
                    "    - { source: name, destination: name }\n")
        with open(os.path.join(repo, f"collections/{name}.yaml"), "w") as f:
            f.write(f"{HEADER}kind: JobCollection\nmetadata: {{ name: {name} }}\nspec:\n  jobs: [ {{ job: {name} }} ]\n")
        if c < due:
            cron = "* * * * *"
        else:
            # Once a day, 6 to 18 hours from now: never during the benchmark.
            hour = (now.hour + 6 + c % 12) % 24
            cron = f"{c % 60} {hour} * * *"
        with open(os.path.join(repo, f"schedules/{name}.yaml"), "w") as f:
            f.write(f"{HEADER}kind: Schedule\nmetadata: {{ name: {name} }}\nspec:\n"
                    f"  targets: [{name}]\n  triggers: [ {{ cron: \"{cron}\" }} ]\n")


def fields(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def parse_rounds(log_path):
    """The rounds in a reconcile log: per pass that started runs (not the first, which fetches),
    its ms, and the runs it started with their CPU time whole and inside jobs, and the passes
    that published their reports."""
    rounds = []  # (pass ms, runner overhead ms, jobs ms, publish ms, runs)
    current = None
    with open(log_path) as f:
        for line in f:
            values = fields(line)
            # The first pass also fetches and loads every schedule's state: not a round.
            if line.rstrip().endswith(" pass") and int(values.get("started", 0)) > 0 and "fetched" not in values:
                # publishMs: the part of the pass that published reports (the reconciler logs it).
                current = {"pass": float(values["ms"]), "passPublish": float(values.get("publishMs", 0)), "runs": 0,
                           "overhead": 0.0, "jobs": 0.0, "publish": 0.0, "ids": []}
                rounds.append(current)
            elif "run finished" in line and current is not None:
                current["runs"] += 1
                current["jobs"] += float(values["jobsCpuMs"])
                current["overhead"] += float(values["cpuMs"]) - float(values["jobsCpuMs"])
                current["ids"].append(values["run"])
            elif line.rstrip().endswith(" pass") and current is not None and int(values.get("published", 0)) > 0:
                # The reports may go out over several passes (each run's end wakes one).
                current["publish"] += float(values["ms"])
    return rounds


def rss_mib(pid):
    """(VmRSS, RssAnon) in MiB: all resident memory, and the part that is the process's own heap
    and stacks rather than mapped files (the Swift runtime, Foundation and ICU libraries)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", float("nan")), values.get("RssAnon", float("nan"))


def sleep_until_second(second):
    """Sleeps until the wall clock's seconds reach `second` (in this or the next minute)."""
    now = time.time()
    target = now - now % 60 + second
    if target <= now + 1:
        target += 60
    time.sleep(target - now)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", default="/tmp/syncwright-reconcile-bench")
    add_binary_option(parser)
    args = parser.parse_args()
    require_binary(args.binary)

    shutil.rmtree(args.work, ignore_errors=True)
    repo = os.path.join(args.work, "config")
    origin = os.path.join(args.work, "config.git")
    home = os.path.join(args.work, "home")
    t = time.perf_counter()
    generate(repo, args.collections, args.due, destinations=args.due)
    commit_and_clone(repo, origin)
    subprocess.run([args.binary, "init", "file://" + origin, "--home", home], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.binary, "apply", "--home", home], check=True, stdout=subprocess.DEVNULL)
    print(f"generated and applied {args.collections} collections, jobs and schedules "
          f"in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    log_path = os.path.join(args.work, "reconcile.log")
    with open(log_path, "w") as log:
        daemon = subprocess.Popen([args.binary, "reconcile", "--interval", "1h", "--home", home],
                                  stdout=subprocess.DEVNULL, stderr=log)
    idle = []
    try:
        for _ in range(args.rounds):
            sleep_until_second(45)
            idle.append(rss_mib(daemon.pid))
        sleep_until_second(45)
        idle.append(rss_mib(daemon.pid))
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)

    rounds = parse_rounds(log_path)
    rounds = [r for r in rounds if r["runs"] == args.due]
    if not rounds:
        sys.exit(f"no complete round found in {log_path}")
    state = sqlite3.connect(os.path.join(home, "state.sqlite"))
    for r in rounds:
        marks = ",".join("?" * len(r["ids"]))
        finished, = state.execute(f"SELECT max(finishedAt) FROM runs WHERE id IN ({marks})", r["ids"]).fetchone()
        scheduled, = state.execute(f"SELECT min(json_extract(report, '$.scheduledFor')) FROM runs WHERE id IN ({marks})",
                                   r["ids"]).fetchone()
        fire_time = datetime.datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
        r["wall"] = (finished - fire_time) * 1000

    def row(name, values, unit="ms"):
        print(f"| {name} | {statistics.median(values):.1f} {unit} | {min(values):.1f} {unit} | {max(values):.1f} {unit} |")

    print(f"| reconcile, {args.collections} scheduled collections, {args.due} due at once "
          f"({len(rounds)} rounds) | median | min | max |")
    print("|---|---|---|---|")
    row("the pass: decide the due fires among all schedules, record them, start the runs", [r["pass"] for r in rounds])
    row(f"runner bookkeeping, summed over the {args.due} runs", [r["overhead"] for r in rounds])
    row("**scheduling overhead** (pass + bookkeeping)", [r["pass"] + r["overhead"] for r in rounds])
    row(f"CPU time inside jobs, summed over the {args.due} runs", [r["jobs"] for r in rounds])
    row(f"wall time from the fire time to the end of the last of the {args.due} runs", [r["wall"] for r in rounds])
    row(f"publishing the {args.due} reports (the passes after the runs, summed)", [r["publish"] for r in rounds])
    row("idle daemon memory: VmRSS, 15 s before each minute", [v[0] for v in idle], unit="MiB")
    row("idle daemon memory: RssAnon (its own heap and stacks)", [v[1] for v in idle], unit="MiB")
    print("\nidle memory samples (VmRSS / RssAnon), before the first round and after each: "
          + ", ".join(f"{v[0]:.1f} / {v[1]:.1f} MiB" for v in idle), file=sys.stderr)


if __name__ == "__main__":
    main()
