#!/usr/bin/env bash
# Installs what scalequest needs on Debian 12, and only what is missing:
#   - the Debian libraries the build links (see README: why each one);
#   - the peer Python environment for the conformance tests (PyPI, once, in
#     $SQ_PEERS_DIR, default ~/.cache/scalequest/peers), unless --no-peers.
# Safe to run again: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

peers=1
for a in "$@"; do
    case "$a" in
    --no-peers) peers=0 ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install-deps: unknown option $a" >&2; exit 2 ;;
    esac
done

debs=(build-essential pkg-config clang libclang-rt-14-dev curl python3 python3-venv
      libdnnl-dev libopenblas-dev libcurl4-openssl-dev libcjson-dev libpcre2-dev
      libutf8proc-dev libmicrohttpd-dev
      libyaml-dev chromium)
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing Debian packages: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

[ "$peers" -eq 1 ] || exit 0
dir="${SQ_PEERS_DIR:-$HOME/.cache/scalequest/peers}"
req=tests/peers/requirements.txt
stamp="$dir/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "install-deps: installing the peer Python environment in $dir (several minutes, once)" >&2
py=python3
[ -x /usr/bin/python3 ] && ! $py -c 'import venv' 2>/dev/null && py=/usr/bin/python3
$py -m venv "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
echo "$want" >"$stamp"
