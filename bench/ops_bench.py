#!/usr/bin/env python3
"""The daemon's endpoints: webhook-to-pass latency, /metrics scrape time, idle memory.

1. Webhook latency. A home of the examples runs `reconcile --listen 127.0.0.1:0 --interval 1h`.
   Each of --pushes signed GitHub push webhooks is sent 1.1 s after the last (the reconciler
   spaces webhook fetches a second apart), and its latency is the pass's start, as the
   reconciler records it (`syncwright_last_pass_timestamp_seconds`), minus the moment just
   before the request was sent. Both clocks are this machine's.
2. Scrape time. A config repository of --collections collections (one CSV-to-CSV job each, all
   fired at start-up) runs under `reconcile --listen`; once every collection has run (one
   `syncwright_runs_total` series each), /metrics is fetched --scrapes times; the time of each
   GET, response read in full, is measured.
3. Idle memory. The examples' home, with and without --listen, alternately: the reconciler's
   RSS (VmRSS) 10 s after its first pass, when it sleeps until the next fetch.
4. Disk. --disk-collections collections run once each and their reports are published, in two
   homes: one as shipped (the idle loop packs the clone), one with packing off (gc.auto 0).
   The clone's size (du) and git count-objects, 15 s after the last report is published.

Usage: bench/ops_bench.py [--pushes 200] [--collections 10000] [--scrapes 50] [--rss-rounds 3]
                          [--disk-collections 2000] [--only webhook|scrape|rss|disk]
                          [--work DIR] [--binary PATH]
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import add_binary_option, commit_and_clone, require_binary, ROOT
from reconcile_bench import generate, rss_mib

HEADER = "apiVersion: syncwright.dev/v1\n"
SECRET = "bench-secret"


class Daemon:
    """`syncwright reconcile --listen 127.0.0.1:0` on a home, until stopped."""

    def __init__(self, binary, home, interval="1h", listen=True, env=None):
        self.log = open(os.path.join(home, "bench-reconcile.log"), "w+")
        argv = [binary, "reconcile", "--interval", interval, "--home", home]
        if listen:
            argv += ["--listen", "127.0.0.1:0"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.log,
                                     env=dict(os.environ, **(env or {})))
        self.address = None
        if listen:
            deadline = time.time() + 60
            while time.time() < deadline and self.address is None:
                self.log.seek(0)
                match = re.search(r"address=(\S+)", self.log.read())
                if match:
                    self.address = match.group(1)
                time.sleep(0.05)
            if self.address is None:
                sys.exit("reconcile --listen did not start")

    def url(self, path):
        return f"http://{self.address}{path}"

    def passes(self):
        self.log.seek(0)
        return self.log.read().count("[syncwright] pass")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)
        self.log.close()


def get(url):
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def examples_home(work, binary, name):
    repo = os.path.join(work, f"{name}-repo")
    shutil.copytree(os.path.join(ROOT, "examples"), repo)
    commit_and_clone(repo, os.path.join(work, f"{name}-origin.git"))
    home = os.path.join(work, name)
    for argv in (["init", f"file://{work}/{name}-origin.git"], ["apply"]):
        subprocess.run([binary, *argv, "--home", home], check=True, stdout=subprocess.DEVNULL)
    return home


def webhook_latency(work, binary, pushes):
    home = examples_home(work, binary, "hook")
    with open(os.path.join(home, "config.yaml"), "a") as f:
        f.write("webhook:\n  secretFrom: { env: BENCH_HOOK_SECRET }\n")
    daemon = Daemon(binary, home, env={"BENCH_HOOK_SECRET": SECRET})
    time.sleep(2)  # the first pass, and its start-up run
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json",
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    latencies = []
    for _ in range(pushes):
        before = metric(get(daemon.url("/metrics")).decode(), "syncwright_last_pass_timestamp_seconds")
        sent = time.time()
        with urllib.request.urlopen(urllib.request.Request(daemon.url("/hooks/git"), data=body, headers=headers)) as r:
            assert r.status == 202, r.status
        deadline = time.time() + 10
        while time.time() < deadline:
            started = metric(get(daemon.url("/metrics")).decode(), "syncwright_last_pass_timestamp_seconds")
            if started is not None and started != before and started >= sent - 0.001:
                latencies.append(max(0.0, started - sent))
                break
            time.sleep(0.005)
        else:
            sys.exit("a webhook started no pass within 10 s")
        time.sleep(max(0.0, sent + 1.1 - time.time()))
    daemon.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    print(f"webhook to pass start, {len(latencies)} pushes: p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")


def startup_repository(work, name, collections):
    """reconcile_bench's repository (none of its schedules fires during a benchmark), with one
    more schedule that fires every collection at start-up, as WORK/NAME-origin.git."""
    repo = os.path.join(work, f"{name}-repo")
    generate(repo, collections, due=0, destinations=100)
    with open(os.path.join(repo, "schedules/start.yaml"), "w") as f:
        f.write(HEADER + "kind: Schedule\nmetadata: { name: start }\nspec:\n  targets: ["
                + ", ".join(f"c-{c:05d}" for c in range(collections)) + "]\n  triggers: [ { atStartup: true } ]\n")
    commit_and_clone(repo, os.path.join(work, f"{name}-origin.git"))


def scrape_time(work, binary, collections, scrapes):
    startup_repository(work, "many", collections)
    home = os.path.join(work, "many")
    for argv in (["init", f"file://{work}/many-origin.git"], ["apply"]):
        subprocess.run([binary, *argv, "--home", home], check=True, stdout=subprocess.DEVNULL)
    daemon = Daemon(binary, home)
    deadline = time.time() + 3600
    while time.time() < deadline:
        text = get(daemon.url("/metrics")).decode()
        series = text.count("syncwright_runs_total{")
        if series >= collections:
            break
        time.sleep(2)
    times = []
    size = 0
    for _ in range(scrapes):
        start = time.perf_counter()
        size = len(get(daemon.url("/metrics")))
        times.append(time.perf_counter() - start)
    daemon.stop()
    times.sort()
    print(f"/metrics with {collections} collections ({series} run series, {size / 1024:.0f} KiB), {scrapes} scrapes: "
          f"median {statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")


def disk(work, binary, collections):
    """The home's clone after `collections` runs are published, packed (default) and not (gc.auto 0)."""
    startup_repository(work, "disk", collections)
    results = {}
    for packed in (True, False):
        home = os.path.join(work, "disk-packed" if packed else "disk-loose")
        for argv in (["init", f"file://{work}/disk-origin.git"], ["apply"]):
            subprocess.run([binary, *argv, "--home", home], check=True, stdout=subprocess.DEVNULL)
        clone = os.path.join(home, "repo.git")
        if not packed:
            subprocess.run(["git", "--git-dir", clone, "config", "gc.auto", "0"], check=True)
        daemon = Daemon(binary, home)
        deadline = time.time() + 1800
        while time.time() < deadline:
            text = get(daemon.url("/metrics")).decode()
            runs = text.count("syncwright_runs_total{")
            if runs >= collections and metric(text, "syncwright_reports_waiting") == 0:
                break
            time.sleep(1)
        time.sleep(15)  # the idle loop's packing, if any
        daemon.stop()
        size = int(subprocess.run(["du", "-sb", clone], check=True, capture_output=True, text=True).stdout.split()[0])
        counts = dict(line.split(": ") for line in subprocess.run(
            ["git", "--git-dir", clone, "count-objects", "-v"], check=True, capture_output=True, text=True).stdout.splitlines())
        results[packed] = (size, counts)
    for packed in (True, False):
        size, counts = results[packed]
        print(f"clone after {collections} reports, {'packed when idle' if packed else 'never packed (gc.auto 0)'}: "
              f"{size / 2**20:.1f} MiB, {counts['count']} loose objects, {counts['in-pack']} packed")


def idle_rss(work, binary, rounds):
    home = examples_home(work, binary, "idle")
    results = {True: [], False: []}
    for round_ in range(rounds):
        for listen in ((True, False) if round_ % 2 == 0 else (False, True)):
            daemon = Daemon(binary, home, interval="1h", listen=listen)
            deadline = time.time() + 30
            while daemon.passes() == 0 and time.time() < deadline:
                time.sleep(0.1)
            time.sleep(10)
            results[listen].append(rss_mib(daemon.proc.pid))
            daemon.stop()
    for listen in (True, False):
        values = results[listen]
        print(f"idle VmRSS / RssAnon {'with' if listen else 'without'} --listen, {rounds} starts: median "
              f"{statistics.median(v[0] for v in values):.1f} / {statistics.median(v[1] for v in values):.1f} MiB "
              f"({', '.join(f'{v[0]:.1f}' for v in values)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--disk-collections", type=int, default=2000)
    parser.add_argument("--rss-rounds", type=int, default=3)
    parser.add_argument("--only", choices=["webhook", "scrape", "rss", "disk"])
    parser.add_argument("--work")
    add_binary_option(parser)
    args = parser.parse_args()
    require_binary(args.binary)
    work = args.work or tempfile.mkdtemp(prefix="ops-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.only in (None, "rss"):
            idle_rss(work, args.binary, args.rss_rounds)
        if args.only in (None, "webhook"):
            webhook_latency(work, args.binary, args.pushes)
        if args.only in (None, "scrape"):
            scrape_time(work, args.binary, args.collections, args.scrapes)
        if args.only in (None, "disk"):
            disk(work, args.binary, args.disk_collections)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
