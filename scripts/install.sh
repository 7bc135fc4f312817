#!/usr/bin/env bash
# Builds a release binary of syncwright and installs it, with shell completion for bash, zsh and
# fish. Installs what is missing first (scripts/install-deps.sh).
#
# Usage: scripts/install.sh [--prefix DIR]     (default /usr/local: the binary goes to DIR/bin,
#                                               which the example systemd unit expects)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local
while (($#)); do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (use --prefix DIR)" >&2; exit 1 ;;
  esac
done
scripts/install-deps.sh
swift build -c release --product syncwright
binary=.build/release/syncwright
install -d "$prefix/bin" "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
  "$prefix/share/fish/vendor_completions.d"
install -m 0755 "$binary" "$prefix/bin/syncwright"
"$binary" --generate-completion-script bash > "$prefix/share/bash-completion/completions/syncwright"
"$binary" --generate-completion-script zsh > "$prefix/share/zsh/site-functions/_syncwright"
"$binary" --generate-completion-script fish > "$prefix/share/fish/vendor_completions.d/syncwright.fish"
echo "Installed $prefix/bin/syncwright ($("$prefix/bin/syncwright" --version 2>/dev/null || echo "version unknown"))"
echo "Shell completion: $prefix/share/bash-completion/completions/syncwright (bash), _syncwright (zsh), syncwright.fish (fish)."
echo "In a new bash, 'syncwright run <TAB>' completes the collections of the home in use."
