#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-batched-bench once, for the side-by-side
# engine benchmark (bench/engine_vs_llamacpp.sh). The source is the llama.cpp tree
# that the llama-cpp-python 0.3.36 sdist vendors; nothing of it enters this
# repository. The build is cached in $SQ_CACHE/llama.cpp-build (default
# ~/.cache/scalequest); a second run only checks that both binaries exist.
# Native flags (the CPU this runs on), two jobs, those two targets only.
# Prints the bin directory on stdout; exits 0 with a SKIP line on stderr and no
# output when the source or cmake is missing. --cached-only: print the bin directory if
# the build is already there, build nothing.
set -euo pipefail
cache="${SQ_CACHE:-$HOME/.cache/scalequest}"
src="${SQ_LLAMA_CPP_SRC:-$cache/llama_cpp_python-0.3.36/vendor/llama.cpp}"
out="$cache/llama.cpp-build"
bin="$out/bin"
if [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-batched-bench" ]; then
    echo "$bin"
    exit 0
fi
[ "${1:-}" = --cached-only ] && exit 0 # only report a finished build
if [ ! -f "$src/CMakeLists.txt" ]; then
    echo "SKIP llama.cpp: no source at $src (fetch the llama-cpp-python 0.3.36 sdist:" \
        "pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36, untar it in $cache)" >&2
    exit 0
fi
if ! command -v cmake >/dev/null; then
    echo "SKIP llama.cpp: cmake is not installed" >&2
    exit 0
fi
echo "llama.cpp: building llama-bench and llama-batched-bench in $out (once, several minutes)" >&2
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON \
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF \
    -DGGML_OPENMP=ON >"$out.cmake.log" 2>&1 || {
    echo "SKIP llama.cpp: cmake configure failed, see $out.cmake.log" >&2
    exit 0
}
cmake --build "$out" -j2 --target llama-bench llama-batched-bench >"$out.build.log" 2>&1 || {
    echo "SKIP llama.cpp: build failed, see $out.build.log" >&2
    exit 0
}
echo "$bin"
