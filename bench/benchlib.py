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


def start_slapd(folder, suffixes, password, *, maxsize, indexes, nosync=True, global_extra="", first_databases="",
                database_extra="", ous=("People",), log=None):
    """Starts a throwaway slapd on a free 127.0.0.1 port, one mdb database per suffix, each with a
    `cn=sync` account that may write (password `password`) and the organizational units `ous`.
    `global_extra` goes after the global settings, `first_databases` before the suffixes'
    databases, `database_extra` into each of them. Returns (process, url)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    writers = " ".join(f'by dn.exact="cn=sync,{s}" write' for s in suffixes)
    conf = f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
{global_extra}pidfile {folder}/slapd.pid
access to attrs=userPassword by self write {writers} by anonymous auth by * none
access to * {writers} by * read
# As Active Directory does: a page is capped, a paged search as a whole is not. (OpenLDAP's
# default caps the whole paged search at the hard size limit, 500.)
sizelimit size.soft=1000 size.hard=1000 size.prtotal=unlimited
{first_databases}"""
    for i, suffix in enumerate(suffixes):
        os.makedirs(f"{folder}/db{i}")
        conf += f"""
database mdb
maxsize {maxsize}
suffix "{suffix}"
rootdn "cn=admin,{suffix}"
rootpw root-secret
directory {folder}/db{i}
{"dbnosync" if nosync else ""}
index objectClass eq
index {indexes} eq
{database_extra}"""
    with open(f"{folder}/slapd.conf", "w") as f:
        f.write(conf)
    errors = open(log, "w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(["/usr/sbin/slapd", "-f", f"{folder}/slapd.conf", "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"],
                            stdout=subprocess.DEVNULL, stderr=errors)
    url = f"ldap://127.0.0.1:{port}"
    for _ in range(300):
        if subprocess.run(["ldapwhoami", "-x", "-H", url, "-D", f"cn=admin,{suffixes[0]}", "-w", "root-secret"],
                          capture_output=True).returncode == 0:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise SystemExit("slapd did not start" + (f": {open(log).read()[-2000:]}" if log else ""))
    for suffix in suffixes:
        name = suffix.split(",")[0].split("=")[1]
        ldif = (f"dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: {name}\no: {name}\n\n"
                + "".join(f"dn: ou={ou},{suffix}\nobjectClass: organizationalUnit\nou: {ou}\n\n" for ou in ous)
                + f"dn: cn=sync,{suffix}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: sync\n"
                f"userPassword: {password}\n")
        subprocess.run(["ldapadd", "-x", "-H", url, "-D", f"cn=admin,{suffix}", "-w", "root-secret"],
                       input=ldif.encode(), check=True, capture_output=True)
    return proc, url
