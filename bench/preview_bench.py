#!/usr/bin/env python3
"""Pull-request preview benchmark: `plan --preview` against the job's own `run --preview`.

The data is bench/sync_bench.py's: a 1,000,000-row CSV → LDIF job, run once so the LDIF file
holds every entry. A pull request then changes that job (it stops syncing department d5 and
allows 5% deletes: about 1% of the objects would be deleted). Two homes share the data:

  - home "base" has the base applied; it runs `plan --ref pr --preview` (fetch, plan the
    manifests, preview the changed job);
  - home "head" has the pull request applied; it runs `run load --preview` (the same job spec,
    the same data, previewed as a run would be).

They are measured alternately (noisy machines), and the medians compared. Goal (#15):
plan --preview at most 1.2× run --preview.

Usage: bench/preview_bench.py [--rows 1000000] [--runs 3] [--work DIR] [--binary PATH]
"""
import json
import os
import statistics
import subprocess
import sys

from benchlib import GIT_ENV, measure
from sync_bench import config, prepare


def main():
    args, csv, ldif = prepare(__doc__, "/tmp/syncwright-preview-bench")
    repo = os.path.join(args.work, "config")
    config(repo, csv, ldif)

    def sw(*argv, home, ok=(0,)):
        result = subprocess.run([args.binary, *argv, "--home", home], capture_output=True, text=True)
        if result.returncode not in ok:
            sys.exit(f"syncwright {' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
        return result.stdout

    base_home, head_home = os.path.join(args.work, "base"), os.path.join(args.work, "head")
    for home in (base_home, head_home):
        sw("init", "file://" + repo, home=home)
        sw("apply", home=home)
    sw("run", "load", home=base_home)                       # the LDIF file now holds every entry

    # The pull request, on a branch: stop syncing department d5, allow 5% deletes.
    path = os.path.join(repo, "sync.yaml")
    with open(path) as f:
        text = f.read()
    text = text.replace("""filter: 'status == "active"'""", """filter: 'status == "active" && dept != "d5"'""")
    text = text.replace("  delete: true\n", "  delete: true\n  deleteThreshold: { percent: 5 }\n")
    with open(path, "w") as f:
        f.write(text)
    for git in (["checkout", "-q", "-b", "pr"], ["commit", "-q", "-am", "stop syncing d5"], ["checkout", "-q", "main"]):
        subprocess.run(["git", *git], cwd=repo, env=GIT_ENV, check=True)
    sw("apply", "--ref", "pr", home=head_home)

    # Both see the same change: check it once.
    plan = json.loads(sw("plan", "--ref", "pr", "--preview", "--format", "json", home=base_home, ok=(2,)))
    jobs = plan["preview"]["jobs"]
    run = json.loads(sw("run", "load", "--preview", "--format", "json", home=head_home))
    deletes = run["jobs"][0]["stats"]["deleted"]
    if len(jobs) != 1 or jobs[0]["preview"]["delete"] != deletes or deletes == 0:
        sys.exit(f"plan --preview and run --preview disagree: {jobs} against {run['jobs']}")
    print(f"{args.rows} rows; the pull request would delete {deletes} objects", file=sys.stderr)

    names = {"plan --ref pr --preview (home at base)": [args.binary, "plan", "--ref", "pr", "--preview", "--home", base_home],
             "run load --preview (home at the pull request)": [args.binary, "run", "load", "--preview", "--home", head_home]}
    ok = {name: (2,) if name.startswith("plan") else (0,) for name in names}
    results = {name: [] for name in names}
    for _ in range(args.runs):
        for name, argv in names.items():
            results[name].append(measure(argv, ok=ok[name]))

    print(f"| measurement ({args.rows} rows) | median wall | min | max | median peak RSS |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, samples in results.items():
        times = [s[0] for s in samples]
        medians[name] = statistics.median(times)
        print(f"| {name} | {medians[name]:.2f} s | {min(times):.2f} s | {max(times):.2f} s "
              f"| {statistics.median([s[1] for s in samples]):.0f} MiB |")
    plan_time, run_time = medians.values()
    print(f"\nplan --preview / run --preview: {plan_time / run_time:.2f}× (goal: at most 1.20×)")


if __name__ == "__main__":
    main()
