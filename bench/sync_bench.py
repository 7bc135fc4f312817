#!/usr/bin/env python3
"""Sync benchmark: a 1,000,000-row CSV → LDIF job.

Measures, with the release binary, wall time, entries/s and peak memory (max RSS, from wait4) of:
  - the first run (empty destination);
  - a rerun with 1% of the rows changed;
next to `wc -l` and `sort` of the same CSV, as a floor. Prints a Markdown table of medians.

Usage: bench/sync_bench.py [--rows 1000000] [--runs 3] [--work DIR]
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

from benchlib import GIT_ENV, ROOT, measure


def write_csv(path, rows, changed=frozenset()):
    first = ["Alice", "Bob", "Chi", "Dörte", "Evan", "Femi", "Gita", "Hugo"]
    last = ["Johnson", "Smith, Jr", "Nguyen", "Müller", "O'Neil", "Okafor", "Rao", "Meyer"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("id,login,given,sn,mail,title,dept,phones,status\n")
        for i in range(rows):
            g, s = first[i % 8], last[(i // 8) % 8]
            title = "Senior Engineer" if i in changed else "Engineer"
            sn = f'"{s}"' if "," in s else s
            f.write(f"{100000 + i},user{i},{g},{sn},user{i}@corp.example,{title},d{i % 97},"
                    f"+49 30 {i % 10000:04d};+49 170 {i:07d},active\n")


def config(repo, csv_path, ldif_path):
    os.makedirs(repo)
    with open(os.path.join(repo, "sync.yaml"), "w") as f:
        f.write(f"""apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: hr }}
spec: {{ type: csv, path: {csv_path} }}
---
apiVersion: syncwright.dev/v1
kind: Connection
metadata: {{ name: corp }}
spec: {{ type: ldif, path: {ldif_path} }}
---
apiVersion: syncwright.dev/v1
kind: Job
metadata: {{ name: hr-to-corp }}
spec:
  source: {{ connection: hr, filter: 'status == "active"' }}
  destination: {{ connection: corp, objectClass: [inetOrgPerson], container: "ou=People,dc=corp,dc=example", rdn: uid }}
  mappings:
    - {{ source: id, destination: employeeNumber, key: true }}
    - {{ source: login, destination: uid }}
    - {{ source: given, destination: givenName }}
    - {{ source: sn, destination: sn }}
    - {{ destination: cn, value: "{{{{given}}}} {{{{sn}}}}" }}
    - {{ destination: mail, value: "{{{{mail | lower}}}}" }}
    - {{ source: title, destination: title }}
    - {{ source: dept, destination: departmentNumber }}
    - {{ source: phones, destination: telephoneNumber, delimiter: ";" }}
  delete: true
---
apiVersion: syncwright.dev/v1
kind: JobCollection
metadata: {{ name: load }}
spec: {{ jobs: [ {{ job: hr-to-corp }} ] }}
""")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True)




def prepare(description, work):
    """The options every benchmark on this data takes; a fresh work folder with the CSV written.
    Returns (args, csv path, ldif path)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", default=work)
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/syncwright"))
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"build the release binary first: swift build -c release --product syncwright ({args.binary})")
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    csv = os.path.join(args.work, "hr.csv")
    write_csv(csv, args.rows)
    return args, csv, os.path.join(args.work, "corp.ldif")


def main():
    args, csv, ldif = prepare(__doc__, "/tmp/syncwright-sync-bench")
    changed = frozenset(random.Random(7).sample(range(args.rows), args.rows // 100))
    csv_changed = os.path.join(args.work, "hr-changed.csv")
    write_csv(csv_changed, args.rows, changed)
    print(f"CSV: {args.rows} rows, {os.path.getsize(csv) / 1e6:.0f} MB; {len(changed)} rows changed for the rerun",
          file=sys.stderr)
    repo = os.path.join(args.work, "config")
    config(repo, csv, ldif)
    home = os.path.join(args.work, "home")
    subprocess.run([args.binary, "init", "file://" + repo, "--home", home], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.binary, "apply", "--home", home], check=True, stdout=subprocess.DEVNULL)
    run = [args.binary, "run", "load", "--home", home]
    original = os.path.join(args.work, "hr-original.csv")
    shutil.copy(csv, original)

    results = {"floor: wc -l": [], "floor: sort": [], "first run (empty destination)": [], "rerun, 1% changed": []}
    first_output = os.path.join(args.work, "corp-after-first.ldif")
    for _ in range(args.runs):
        results["floor: wc -l"].append(measure(["wc", "-l", csv]))
        results["floor: sort"].append(measure(["sort", "-o", os.path.join(args.work, "sorted.csv"), csv]))
        shutil.copy(original, csv)
        if os.path.exists(ldif):
            os.remove(ldif)
        results["first run (empty destination)"].append(measure(run))
        shutil.copy(ldif, first_output)
        shutil.copy(csv_changed, csv)
        results["rerun, 1% changed"].append(measure(run))
        # Check the rerun did what it should: exactly the changed rows were updated.
        report = subprocess.run([args.binary, "history", "load", "--format", "json", "--limit", "1", "--home", home],
                                capture_output=True, text=True, check=True).stdout
        if f'"updated" : {len(changed)}' not in report:
            sys.exit(f"the rerun did not update exactly {len(changed)} entries:\n{report}")
        shutil.copy(first_output, ldif)

    print(f"| measurement ({args.rows} rows) | median wall | entries/s | min | max | median peak RSS |")
    print("|---|---|---|---|---|---|")
    for name, samples in results.items():
        times = [s[0] for s in samples]
        rss = [s[1] for s in samples]
        median = statistics.median(times)
        print(f"| {name} | {median:.2f} s | {args.rows / median:,.0f} | {min(times):.2f} s | {max(times):.2f} s "
              f"| {statistics.median(rss):.0f} MiB |")


if __name__ == "__main__":
    main()
