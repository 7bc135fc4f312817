#!/usr/bin/env python3
"""A client of the reconciler's endpoints for the tests, independent of Syncwright's code.

  scrape URL                  parse /metrics with prometheus_client; print the samples as JSON:
                              [{"name": ..., "labels": {...}, "value": ...}, ...]
  get URL                     print {"status": N, "body": {...}} for /healthz or /readyz
  hook URL --provider P --secret S --ref R [--count N] [--body TEXT] [--event E]
                              send N push webhooks at once (threads), signed as provider P
                              (github, gitea, gitlab, unsigned); print the statuses as JSON
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fetch(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(url):
    status, body = fetch(url)
    if status != 200:
        sys.exit(f"GET {url}: {status}")
    samples = []
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
    print(json.dumps(samples))


def get(url):
    status, body = fetch(url)
    print(json.dumps({"status": status, "body": json.loads(body or b"{}")}))


def hook(args):
    body = (args.body if args.body is not None else json.dumps({"ref": args.ref, "after": "0" * 40})).encode()
    headers = {"Content-Type": "application/json"}
    secret = args.secret.encode()
    if args.provider == "github":
        headers["X-GitHub-Event"] = args.event or "push"
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    elif args.provider == "gitea":
        headers["X-Gitea-Event"] = args.event or "push"
        headers["X-Gitea-Signature"] = hmac.new(secret, body, hashlib.sha256).hexdigest()
    elif args.provider == "gitlab":
        headers["X-Gitlab-Event"] = args.event or "Push Hook"
        headers["X-Gitlab-Token"] = args.secret
    statuses = [None] * args.count
    barrier = threading.Barrier(args.count)

    def send(index):
        barrier.wait()
        statuses[index] = fetch(args.url, data=body, headers=headers)[0]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(args.count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(statuses))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("scrape").add_argument("url")
    sub.add_parser("get").add_argument("url")
    h = sub.add_parser("hook")
    h.add_argument("url")
    h.add_argument("--provider", required=True, choices=["github", "gitea", "gitlab", "unsigned"])
    h.add_argument("--secret", default="")
    h.add_argument("--ref", default="refs/heads/main")
    h.add_argument("--count", type=int, default=1)
    h.add_argument("--body")
    h.add_argument("--event")
    args = parser.parse_args()
    if args.command == "scrape":
        scrape(args.url)
    elif args.command == "get":
        get(args.url)
    else:
        hook(args)


if __name__ == "__main__":
    main()
