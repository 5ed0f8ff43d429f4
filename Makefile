# scalequest — one library, one command, tests, benchmarks, fuzzers.
#   make            release build (build/rel): libscalequest.a, scalequest, benchmarks
#   make test       sanitized build (build/san) and every test; ends "N passed, N failed"
#   make bench      benchmarks against peers measured in the same run
#   make demo       the embedded default job, from scratch
#   make crash-test kill -9 `scalequest run` at 100 random moments; the result must not change
#   make ablation   the paper's Figure 5 in miniature on the tiny world (docs/ablation.md)
#   make fuzz       libFuzzer targets (clang) in build/fuzz
#   make check-peers  the long peer comparisons that make test samples, then the engine's
#                     respond shape beside llama.cpp at 2,048 new tokens (bench/engine_vs_llamacpp.sh)
# Sources are found by wildcard: a new src/<module>/*.c, tools/cmd_*.c, tests/test_*.c,
# bench/bench_*.c or fuzz/fuzz_*.c needs no edit here.

CC      ?= cc
PKGS    := libcurl libcjson libpcre2-8 libutf8proc libmicrohttpd openblas yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# oneDNN ships no .pc file in Debian; it lives on the default paths.
LIBS    := $(PKG_LIBS) -ldnnl -lm -lpthread
# MPI is optional (include/scalequest/dist.h): the data-parallel glue is compiled in when Open
# MPI's development files are there (Debian: libopenmpi-dev); without them train runs alone.
ifeq ($(shell pkg-config --exists ompi-c 2>/dev/null && echo yes),yes)
PKG_CFLAGS += $(shell pkg-config --cflags ompi-c) -DSQ_HAVE_MPI
LIBS       += $(shell pkg-config --libs ompi-c)
endif

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation
ARCH    ?= -march=native
BASE_CFLAGS := -std=c17 -D_DEFAULT_SOURCE -D_GNU_SOURCE $(WARN) $(ARCH) -fopenmp -Iinclude -Ibuild/gen $(PKG_CFLAGS) -MMD -MP
REL_CFLAGS  := $(BASE_CFLAGS) -O3 -g -DNDEBUG
SAN_CFLAGS  := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LDFLAGS := -fsanitize=address,undefined -fopenmp
REL_LDFLAGS := -fopenmp

LIB_SRC   := $(wildcard src/*/*.c)
TOOL_SRC  := $(wildcard tools/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
CMD_SRC   := $(wildcard tools/cmd_*.c)

.PHONY: all test bench demo fuzz check-peers clean format deps crash-test ablation real-demo
# Keep intermediate objects of the pattern chains (tests, benches, fuzzers) between builds.
.SECONDARY:
all: build/rel/scalequest $(BENCH_SRC:bench/%.c=build/rel/bench/%)

deps:
	./scripts/install-deps.sh

build/gen/commands.inc: $(CMD_SRC) Makefile
	@mkdir -p $(@D)
	@cat /dev/null $(CMD_SRC) | sed -n 's/^SQ_COMMAND(\([a-z_0-9]*\),.*/X(\1)/p' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# ---- one set of rules per build flavour ---------------------------------------------------
define flavour
build/$(1)/%.o: %.c
	@mkdir -p $$(@D)
	$$(CC) $$($(2)) -c $$< -o $$@

# Only the dispatcher includes the generated command table.
build/$(1)/tools/scalequest.o: build/gen/commands.inc

build/$(1)/libscalequest.a: $$(LIB_SRC:%.c=build/$(1)/%.o)
	@mkdir -p $$(@D)
	rm -f $$@ && ar rcs $$@ $$^

build/$(1)/scalequest: $$(TOOL_SRC:%.c=build/$(1)/%.o) build/$(1)/libscalequest.a
	$$(CC) $$($(3)) -o $$@ $$(TOOL_SRC:%.c=build/$(1)/%.o) build/$(1)/libscalequest.a $$(LIBS)
endef
$(eval $(call flavour,rel,REL_CFLAGS,REL_LDFLAGS))
$(eval $(call flavour,san,SAN_CFLAGS,SAN_LDFLAGS))

build/san/tests/%: build/san/tests/%.o build/san/tests/harness.o build/san/libscalequest.a
	$(CC) $(SAN_LDFLAGS) -o $@ $< build/san/tests/harness.o build/san/libscalequest.a $(LIBS)

build/rel/bench/%: build/rel/bench/%.o build/rel/libscalequest.a
	$(CC) $(REL_LDFLAGS) -o $@ $< build/rel/libscalequest.a $(LIBS)

TEST_BINS := $(TEST_SRC:tests/%.c=build/san/tests/%)

test: build/san/scalequest $(TEST_BINS) build/rel/scalequest
	./tests/run.sh

check-peers: build/san/scalequest $(TEST_BINS) all
	SQ_LONG=1 ./tests/run.sh
	SQ_LONG=1 SQ_BENCH_SHAPES_ONLY=respond ./bench/run.sh engine_vs_llamacpp

bench: all
	./bench/run.sh

demo: build/rel/scalequest
	./scripts/demo.sh

# QFT SmolLM2-135M-Instruct on math questions, then questions from the raw and the QFT model compared (~30 min)
real-demo: build/rel/scalequest
	./scripts/real-demo.sh

# kill -9 `scalequest run` at 100 random moments of a small run; ends "100 kills, 0 lost, 0 duplicated, identical"
crash-test: build/rel/scalequest
	./scripts/crash-test.sh 100 examples/crash.yaml

# Figure 5 in miniature: five datasets x 3 seeds, each fine-tuning the same student base
ablation: build/rel/scalequest
	./scripts/ablation.sh

# ---- fuzzers: clang + libFuzzer over a separately instrumented library -------------------
# -Wno-pass-failed: at -O1 clang may decline an `omp simd` hint; that is speed, not a defect.
FUZZ_CFLAGS := $(filter-out -fopenmp -MMD -MP,$(BASE_CFLAGS)) -fopenmp -O1 -g -fsanitize=fuzzer-no-link,address,undefined
build/fuzz/%.o: %.c
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -Wno-unknown-warning-option -Wno-pass-failed -c $< -o $@
build/fuzz/libscalequest.a: $(LIB_SRC:%.c=build/fuzz/%.o)
	rm -f $@ && ar rcs $@ $^
build/fuzz/fuzz_%: build/fuzz/fuzz/fuzz_%.o build/fuzz/libscalequest.a
	clang -fsanitize=fuzzer,address,undefined -fopenmp -o $@ $^ $(LIBS)
fuzz: $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

format:
	clang-format -i $(LIB_SRC) $(TOOL_SRC) $(TEST_SRC) $(BENCH_SRC) $(FUZZ_SRC) include/scalequest/*.h tools/*.h tests/*.h

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
