#!/usr/bin/env python3
"""Planning benchmark: a config repository with 10,000 collections and 50,000 jobs.

Measures, with the release binary, wall time and peak memory (max RSS, from wait4) of:
  - a cold apply: `init` (libgit2 bare clone) + `apply` (fetch, parse all, plan, store);
  - a no-change `plan`;
  - a `plan` after a one-file change.
Prints a Markdown table of medians. Never fails on timing.

Usage: bench/plan_bench.py [--jobs 50000] [--collections 10000] [--runs 5] [--work DIR]
"""
import argparse
import os
import shutil
import statistics
import sys
import time

from benchlib import add_binary_option, commit_and_clone, git, measure, require_binary

JOB = """apiVersion: syncwright.dev/v1
kind: Job
metadata: {{ name: job-{i:05d}, description: "Generated job {i}" }}
spec:
  source: {{ connection: hr-export, filter: 'department == "d{dept}"' }}
  destination:
    connection: corp-directory
    objectClass: [inetOrgPerson]
    container: "ou=d{dept},ou=People,dc=corp,dc=example"
    rdn: uid
  mappings:
    - {{ source: employeeId, destination: employeeNumber, key: true }}
    - {{ source: login, destination: uid }}
    - {{ destination: cn, value: "{{{{givenName}}}} {{{{surname}}}}" }}
    - {{ destination: mail, value: "{{{{email | lower}}}}" }}
    - {{ source: phones, destination: telephoneNumber, delimiter: ";" }}
  create: true
  delete: false
"""

COLLECTION = """apiVersion: syncwright.dev/v1
kind: JobCollection
metadata: {{ name: collection-{c:05d} }}
spec:
  jobs:
{jobs}
"""


def generate(repo, jobs, collections):
    os.makedirs(os.path.join(repo, "jobs"), exist_ok=True)
    os.makedirs(os.path.join(repo, "collections"), exist_ok=True)
    os.makedirs(os.path.join(repo, "data"), exist_ok=True)
    with open(os.path.join(repo, "data/hr.csv"), "w") as f:
        f.write("employeeId,login,givenName,surname,email,phones,department\n")
    with open(os.path.join(repo, "connections.yaml"), "w") as f:
        f.write("apiVersion: syncwright.dev/v1\nkind: Connection\nmetadata: { name: hr-export }\n"
                "spec: { type: csv, repoPath: data/hr.csv }\n---\n"
                "apiVersion: syncwright.dev/v1\nkind: Connection\nmetadata: { name: corp-directory }\n"
                "spec: { type: ldif, path: corp.ldif }\n")
    for i in range(jobs):
        with open(os.path.join(repo, f"jobs/job-{i:05d}.yaml"), "w") as f:
            f.write(JOB.format(i=i, dept=i % 97))
    per = jobs // collections
    for c in range(collections):
        lines = "\n".join(f"    - {{ job: job-{c * per + k:05d}, onFailure: {'continue' if k % 2 else 'abort'} }}"
                          for k in range(per))
        with open(os.path.join(repo, f"collections/collection-{c:05d}.yaml"), "w") as f:
            f.write(COLLECTION.format(c=c, jobs=lines))






def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--collections", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default="/tmp/syncwright-plan-bench")
    add_binary_option(parser)
    args = parser.parse_args()
    require_binary(args.binary)

    shutil.rmtree(args.work, ignore_errors=True)
    repo = os.path.join(args.work, "config")
    origin = os.path.join(args.work, "config.git")
    t = time.perf_counter()
    generate(repo, args.jobs, args.collections)
    commit_and_clone(repo, origin)
    git("remote", "add", "origin", origin, cwd=repo)
    print(f"generated {args.jobs} jobs and {args.collections} collections "
          f"({args.jobs + args.collections + 1} files) in {time.perf_counter() - t:.1f}s", file=sys.stderr)

    url = "file://" + origin
    results = {"reference: git clone --bare (git CLI)": [], "init (bare clone)": [], "apply, first (fetch, parse, plan, store)": [], "cold apply (init + apply)": [],
               "plan, no change": [], "plan, one file changed": []}
    for run in range(args.runs):
        home = os.path.join(args.work, f"home-{run}")
        reference = os.path.join(args.work, f"git-clone-{run}.git")
        results["reference: git clone --bare (git CLI)"].append(measure(["git", "clone", "-q", "--bare", url, reference]))
        init = measure([args.binary, "init", url, "--home", home])
        apply = measure([args.binary, "apply", "--home", home])
        results["init (bare clone)"].append(init)
        results["apply, first (fetch, parse, plan, store)"].append(apply)
        results["cold apply (init + apply)"].append((init[0] + apply[0], max(init[1], apply[1])))
        results["plan, no change"].append(measure([args.binary, "plan", "--home", home]))

    # One file changed: the plan reads that file only. A fresh commit per run, planned by a home that
    # has applied the previous one.
    home = os.path.join(args.work, "home-0")
    for run in range(args.runs):
        path = os.path.join(repo, "jobs/job-00042.yaml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("create: true", "create: false") if "create: true" in text
                    else text.replace("create: false", "create: true"))
        git("commit", "-q", "-am", f"edit {run}", cwd=repo)
        git("push", "-q", "origin", "main", cwd=repo)
        results["plan, one file changed"].append(measure([args.binary, "plan", "--home", home], ok=(2,)))
        measure([args.binary, "apply", "--home", home])

    print(f"| measurement ({args.jobs} jobs, {args.collections} collections) | median wall | min | max | median peak RSS |")
    print("|---|---|---|---|---|")
    for name, samples in results.items():
        times = [s[0] for s in samples]
        rss = [s[1] for s in samples]
        print(f"| {name} | {statistics.median(times):.3f} s | {min(times):.3f} s | {max(times):.3f} s "
              f"| {statistics.median(rss):.0f} MiB |")


if __name__ == "__main__":
    main()
