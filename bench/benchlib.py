"""Shared helpers for the benchmark scripts: timing a command with its own peak memory."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A fixed identity, so the scripts do not depend on the machine's git config.
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.invalid")


def measure(argv, ok=(0,), cwd=None):
    """Runs argv; returns (seconds, peak RSS in MiB) of that process alone, read with wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        sys.exit(f"{' '.join(argv)} exited {code}: {proc.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, stdout=subprocess.DEVNULL)


def add_binary_option(parser):
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/syncwright"))


def require_binary(binary):
    if not os.path.exists(binary):
        sys.exit(f"build the release binary first: swift build -c release --product syncwright ({binary})")


def commit_and_clone(repo, origin):
    """Makes `repo` (a folder of files) a git repository with one commit, and `origin` its bare clone."""
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "generated", cwd=repo)
    git("clone", "-q", "--bare", repo, origin, cwd=os.path.dirname(origin))
    # Reports pushed to the origin make `git receive-pack` start `git gc --auto`, which packs the
    # origin's tens of thousands of loose objects in the background while the next `init` copies
    # them. Measure the tool, not a repack.
    git("config", "receive.autogc", "false", cwd=origin)
    git("config", "gc.auto", "0", cwd=origin)
