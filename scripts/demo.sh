#!/usr/bin/env bash
# Installs what is missing, builds, and runs Syncwright on the demo config repository in examples/:
# a bare git repository made from it (file://, no server), then init, validate, plan, apply, runs,
# an approval, reconcile and status.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/install-deps.sh
swift build --product syncwright
bin="$root/.build/debug/syncwright"

work=${DEMO_DIR:-$(mktemp -d /tmp/syncwright-demo.XXXXXX)}
mkdir -p "$work"
rm -rf "$work/config" "$work/config.git" "$work/home"
cp -r examples "$work/config"
export GIT_AUTHOR_NAME="Syncwright Demo" GIT_AUTHOR_EMAIL="demo@syncwright.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
git -C "$work/config" init -q -b main
git -C "$work/config" add -A
git -C "$work/config" commit -q -m "Demo config repository"
git clone -q --bare "$work/config" "$work/config.git"

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }
cd "$work"
step syncwright init "file://$work/config.git" --home home
"$bin" init "file://$work/config.git" --home home
step syncwright validate --home home
"$bin" validate --home home
step syncwright plan --home home
"$bin" plan --home home || [[ $? == 2 ]]   # exit 2: changes to apply
step syncwright apply --home home
"$bin" apply --home home
step syncwright plan --home home
"$bin" plan --home home
step syncwright run nightly-directory-sync --preview --home home
"$bin" run nightly-directory-sync --preview --home home
step syncwright run nightly-directory-sync --home home   "# the contractors job raises a request; its notification (corp-mail, teams-directory) cannot reach a server here: it is queued, with a warning"
"$bin" run nightly-directory-sync --home home
step syncwright requests --home home   "# the contractors job is under a workflow: it waits for security@corp.example"
"$bin" requests --home home
request=$("$bin" requests --status pending --format json --home home | sed -n 's/.*"id" : "\(req-[^"]*\)".*/\1/p' | head -n 1)
step syncwright approve "$request" --author "Security Team <security@corp.example>" --reason "contractor checked" --home home
"$bin" approve "$request" --author "Security Team <security@corp.example>" --reason "contractor checked" --home home
step syncwright run nightly-directory-sync --home home   "# again: unchanged, and a new request for the contractors job"
"$bin" run nightly-directory-sync --home home
step syncwright history --home home
"$bin" history --home home
step syncwright status --home home   "# lists the notifications not delivered yet"
"$bin" status --home home
step syncwright reconcile --once --home home   "# applies the Approval, fires schedules/nightly.yaml (atStartup), then runs the approved job"
"$bin" reconcile --once --home home
step syncwright status --home home   "# next runs come from schedules/nightly.yaml (02:30 Berlin time)"
"$bin" status --home home
step git --git-dir config.git log --oneline reports   "# the reports branch, in the origin"
git --git-dir config.git log --oneline reports
step syncwright requests --home home
"$bin" requests --home home
step git --git-dir config.git show reports:README.md
git --git-dir config.git show reports:README.md
step head -n 13 home/directories/corp.ldif
head -n 13 home/directories/corp.ldif

# A pull request: Bob joins the engineering team. Reviewed by what it does to the directories.
git -C config pull -q --ff-only "$work/config.git" main   # the Approval that syncwright approve pushed
git -C config checkout -q -b bob-joins-engineering
sed -i 's/^engineering,Everyone who builds the product,ajohnson;dmüller$/engineering,Everyone who builds the product,ajohnson;dmüller;bsmith/' config/data/hr-groups.csv
git -C config commit -q -am "Bob joins engineering"
git -C config push -q "$work/config.git" bob-joins-engineering
git -C config checkout -q main
step syncwright plan --ref bob-joins-engineering --preview --home home   "# a pull request, previewed: read-only"
"$bin" plan --ref bob-joins-engineering --preview --home home || [[ $? == 2 ]]   # exit 2: it would change something
printf '\nThe demo lives in %s: edit %s/config, commit, push to config.git, then plan again.\n' "$work" "$work"
