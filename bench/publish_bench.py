#!/usr/bin/env python3
"""Publish time for one run report onto a reports branch that already holds N runs.

For each N, builds an origin whose reports branch has N commits (one per run, all of one
collection, made with git fast-import), makes a home from the examples, then runs the demo
collection K times. Each run publishes one report; the reconciler's own log gives the time spent
building the commit (libgit2, no work tree, README included) and pushing it (git receive-pack).
Side by side, in a bare clone, the git CLI plumbing (hash-object, mktree, commit-tree,
update-ref) builds the same commit onto the same tip, and `git push` sends it. Prints medians.

    swift build -c release --product syncwright
    python3 bench/publish_bench.py [--sizes 100,1000,10000] [--collections 1] [--runs 7]
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time

from benchlib import GIT_ENV, ROOT

COLLECTION = "nightly-directory-sync"


def git(args, cwd, data=None):
    out = subprocess.run(["git"] + args, cwd=cwd, env=GIT_ENV, input=data, capture_output=True, check=True)
    return out.stdout


def run_id(i):
    t = time.gmtime(1735689600 + 60 * i)  # 2025-01-01, a minute apart: older than any new run
    return time.strftime("%Y%m%dT%H%M%SZ", t) + "-%04x" % (i % 65536)


def report_json(rid):
    return json.dumps({"runId": rid, "collection": COLLECTION, "trigger": "manual", "revision": "0" * 40,
                       "status": "succeeded", "startedAt": "2025-01-01T00:00:00.000Z",
                       "finishedAt": "2025-01-01T00:00:01.000Z", "jobs": []}, sort_keys=True)


def seed_reports(origin, n, collections=1):
    """N commits on refs/heads/reports, each adding one run folder, through git fast-import. The
    runs go round-robin to the demo collection and `collections - 1` others."""
    names = [COLLECTION] + [f"other-{k}" for k in range(1, collections)]
    lines = []
    for i in range(n):
        rid = run_id(i)
        folder = f"runs/{names[i % collections]}/{rid}"
        files = {f"{folder}/summary.md": f"# {COLLECTION}: succeeded\n\nrun {rid}\n",
                 f"{folder}/report.json": report_json(rid) + "\n",
                 f"{folder}/hr-users-to-corp.log": f"+ uid=user{i},ou=People,dc=corp,dc=example\n",
                 "README.md": f"# Syncwright reports\n\nlatest {rid}\n"}
        lines.append("commit refs/heads/reports\n")
        lines.append(f"committer Bench <bench@example.invalid> {1735689600 + 60 * i} +0000\n")
        message = f"run {COLLECTION} {rid}: succeeded\n"
        lines.append(f"data {len(message.encode())}\n{message}")
        for path, text in files.items():
            body = text.encode()
            lines.append(f"M 100644 inline {path}\ndata {len(body)}\n")
            lines.append(text)
        lines.append("\n")
    git(["fast-import", "--quiet"], origin, "".join(lines).encode())


def plumbing_publish(repo, tip, rid):
    """The same commit as one publish, made with git plumbing; returns seconds."""
    folder_files = {"summary.md": f"# {COLLECTION}: succeeded\n", "report.json": report_json(rid) + "\n",
                    "hr-users-to-corp.log": "", "corp-users-to-partner.log": ""}
    scratch = tempfile.mkdtemp()
    paths = []
    for name, text in folder_files.items():
        path = os.path.join(scratch, name)
        with open(path, "w") as f:
            f.write(text)
        paths.append(path)
    readme = os.path.join(scratch, "README.md")
    with open(readme, "w") as f:
        f.write(f"# Syncwright reports\n\nlatest {rid}\n")
    start = time.perf_counter()
    blobs = git(["hash-object", "-w"] + paths + [readme], repo).decode().split()
    run_tree = git(["mktree"], repo, "".join(f"100644 blob {b}\t{n}\n" for b, n in zip(blobs, folder_files)).encode()).strip()
    collection = git(["ls-tree", f"{tip}:runs/{COLLECTION}"], repo) + f"040000 tree {run_tree.decode()}\t{rid}\n".encode()
    collection_tree = git(["mktree"], repo, collection).strip().decode()
    runs = [l for l in git(["ls-tree", f"{tip}:runs"], repo).decode().splitlines() if not l.endswith(f"\t{COLLECTION}")]
    runs.append(f"040000 tree {collection_tree}\t{COLLECTION}")
    runs_tree = git(["mktree"], repo, ("\n".join(runs) + "\n").encode()).strip().decode()
    root = [l for l in git(["ls-tree", tip], repo).decode().splitlines() if not re.search(r"\t(runs|README\.md)$", l)]
    root += [f"040000 tree {runs_tree}\truns", f"100644 blob {blobs[-1]}\tREADME.md"]
    root_tree = git(["mktree"], repo, ("\n".join(root) + "\n").encode()).strip().decode()
    commit = git(["commit-tree", root_tree, "-p", tip, "-m", f"run {COLLECTION} {rid}"], repo).strip().decode()
    git(["update-ref", "refs/heads/reports", commit, tip], repo)
    elapsed = time.perf_counter() - start
    shutil.rmtree(scratch)
    return elapsed, commit


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--collections", type=int, default=1, help="spread the held runs over this many collections")
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/syncwright"))
    args = parser.parse_args()
    print(f"binary: {args.binary}")
    print(f"held runs spread over {args.collections} collection(s)")
    print(f"{'runs held':>10} {'build (libgit2)':>16} {'push':>8} {'publish':>8} {'git plumbing':>13} {'git push':>9}"
          f"  (medians of {args.runs}, ms)")
    for n in [int(s) for s in args.sizes.split(",")]:
        work = tempfile.mkdtemp(prefix="syncwright-publish-bench-")
        try:
            config = os.path.join(work, "config")
            shutil.copytree(os.path.join(ROOT, "examples"), config)
            git(["init", "-q", "-b", "main"], config)
            git(["add", "-A"], config)
            git(["commit", "-q", "-m", "examples"], config)
            origin = os.path.join(work, "origin.git")
            git(["clone", "-q", "--bare", config, origin], work)
            seed_reports(origin, n, args.collections)
            home = os.path.join(work, "home")
            subprocess.run([args.binary, "init", f"file://{origin}", "--home", home], check=True, capture_output=True)
            subprocess.run([args.binary, "apply", "--home", home], check=True, capture_output=True)
            clone = os.path.join(work, "clone.git")
            git(["clone", "-q", "--bare", "--single-branch", "-b", "reports", f"file://{origin}", clone], work)
            build, push, total, plumbing, git_push = [], [], [], [], []
            for k in range(args.runs):
                # Fetch first (not timed): the git side below moved the branch since.
                subprocess.run([args.binary, "reconcile", "--once", "--home", home], check=True, capture_output=True)
                out = subprocess.run([args.binary, "run", COLLECTION, "--home", home, "--log-level", "info"],
                                     capture_output=True, text=True, check=True)
                line = next(l for l in out.stderr.splitlines() if "published reports" in l)
                fields = dict(re.findall(r"(\w+)=(\S+)", line))
                if fields.get("attempts") != "1":
                    raise SystemExit(f"unexpected retry: {line}")
                build.append(float(fields["buildMs"]))
                push.append(float(fields["pushMs"]))
                total.append(build[-1] + push[-1])
                git(["fetch", "-q", "origin", "+reports:reports"], clone)
                tip = git(["rev-parse", "reports"], clone).strip().decode()
                seconds, _ = plumbing_publish(clone, tip, run_id(n + k))
                plumbing.append(seconds * 1000)
                start = time.perf_counter()
                git(["push", "-q", "origin", "reports"], clone)
                git_push.append((time.perf_counter() - start) * 1000)
            count = git(["rev-list", "--count", "reports"], origin).strip().decode()
            print(f"{n:>10} {statistics.median(build):>16.1f} {statistics.median(push):>8.1f} "
                  f"{statistics.median(total):>8.1f} {statistics.median(plumbing):>13.1f} "
                  f"{statistics.median(git_push):>9.1f}  (branch: {count} commits)")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
