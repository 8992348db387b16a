# migd — one non-recursive Makefile for the daemon, tools, tests and docs.
# `make V=1` shows commands; `make WERROR=1` turns warnings into errors (CI).
# Sources are found by folder: a new .c in a module folder is built into
# libmigd.a without touching this file; each tests/unit/test_*.c is a cmocka
# program linked against libmigd.a.

BUILD ?= build
V ?= 0
WERROR ?= 0
SAN ?= 0
CC ?= cc
PYTHON ?= python3

ifeq ($(V),1)
Q :=
else
Q := @
endif

OPT ?= -O2
CFLAGS := -std=gnu11 $(OPT) -g -Wall -Wextra -Wno-unused-parameter \
	  -Wno-missing-field-initializers -fno-strict-aliasing
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif
CPPFLAGS := -I. -D_GNU_SOURCE -MMD -MP
LIBS := -ljansson -lxxhash -lssl -lcrypto -lzstd -lz -lpthread -lm

LIB_DIRS := util control guest multifd socket file rdma
LIB_SRCS := $(filter-out control/main.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
LIBMIGD := $(BUILD)/libmigd.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

PROGS := $(BUILD)/migd $(BUILD)/migctl $(BUILD)/ramdigest

.PHONY: all check check-unit check-system check-long asan fuzz format \
	format-check demo deps clean help check-interop check-interop-long qemu bench
.DEFAULT_GOAL := all
# Keep intermediate objects (unit-test .o files) so rebuilds are incremental.
.SECONDARY:

all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBMIGD): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/migd: $(BUILD)/control/main.o $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# migctl's pieces; the unit test test_migctl_args links them too.
MIGCTL_OBJS := $(addprefix $(BUILD)/contrib/,qmp_client.o migctl_args.o \
	migctl_progress.o migctl_watch.o)
$(BUILD)/migctl: $(BUILD)/contrib/migctl.o $(MIGCTL_OBJS) $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
$(BUILD)/tests/unit/test_migctl_args: $(MIGCTL_OBJS)

# ramdigest FILE...: x-query-ram-digest's digests of files (guest/digest.h).
$(BUILD)/ramdigest: $(BUILD)/contrib/ramdigest.o $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# migdump [options] MAIN [CHANNEL...]: QEMU migration stream inspector
# (docs/migdump.md). Its decoders are also the fuzz target fuzz_migdump's.
MIGDUMP_SRCS := $(filter-out contrib/migdump.c,$(wildcard contrib/migdump*.c))
MIGDUMP_OBJS := $(MIGDUMP_SRCS:%.c=$(BUILD)/%.o)
PROGS += $(BUILD)/migdump
$(BUILD)/migdump: $(BUILD)/contrib/migdump.o $(MIGDUMP_OBJS) $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)
build-fuzz/fuzz_migdump: tests/fuzz/fuzz_migdump.c $(MIGDUMP_SRCS) $(LIB_SRCS)
	@mkdir -p build-fuzz
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -DMIGD_FUZZ \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(MIGDUMP_SRCS) \
		$(LIB_SRCS) $(LIBS)
-include $(BUILD)/contrib/migdump.d $(MIGDUMP_OBJS:.o=.d)

# migd-limits [-c COLD_S] [-t TOUCH_MiB] [MiB]: the machine's limits for
# docs/benchmarks.md (perf/limits.c).
$(BUILD)/migd-limits: $(BUILD)/perf/limits.o $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Objects first, then the archive (extra objects may be added per test).
$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIBMIGD)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter-out %.a,$^) $(filter %.a,$^) \
		$(LIBS) -lcmocka

# --- dependencies -----------------------------------------------------------
# Installs the Debian packages the build and tests need, only when missing.
deps:
	$(Q)bash contrib/install-deps.sh

# --- tests ------------------------------------------------------------------
check: deps
	$(Q)$(MAKE) --no-print-directory WERROR=$(WERROR) all $(UNIT_BINS)
	$(Q)$(MAKE) --no-print-directory check-unit check-system check-interop

check-unit: $(UNIT_BINS)
	$(Q)set -e; for t in $(UNIT_BINS); do \
		echo "  UNIT    $$t"; $$t >$$t.log 2>&1 || { cat $$t.log; exit 1; }; \
	done

check-system: $(PROGS)
	$(Q)MIGD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m unittest discover \
		-s tests/system -p 'test_*.py' -t . $(if $(filter 1,$(V)),-v)

# Migrations to and from real QEMU 7.2 and 10.0 (tests/interop/): a
# representative subset; check-interop-long (part of check-long) runs the
# whole matrix. Skips when no QEMU is found: `make qemu` installs both.
INTEROP = MIGD_BUILD=$(abspath $(BUILD)) $(PYTHON) -m unittest discover \
	-s tests/interop -p 'test_*.py' -t . $(if $(filter 1,$(V)),-v)
check-interop: $(PROGS)
	$(Q)if $(PYTHON) -m tests.interop.qemutest; then $(INTEROP); else \
		echo "check-interop: skipped, no QEMU found (make qemu installs them)"; fi
check-interop-long: $(PROGS)
	$(Q)$(PYTHON) -m tests.interop.qemutest && INTEROP_FULL=1 $(INTEROP)
check-long: check-interop-long
qemu:
	$(Q)bash contrib/install-qemu.sh

# Sanitizer build of everything, then the unit and system tests against it.
asan: deps
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 \
		WERROR=$(WERROR) check-unit check-system

# libFuzzer targets (clang). FUZZ_TIME seconds per target.
FUZZ_TIME ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build-fuzz/%)
build-fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p build-fuzz
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang -std=gnu11 -g -O1 -I. -D_GNU_SOURCE -DMIGD_FUZZ \
		-fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(LIBS)
fuzz: deps $(FUZZ_BINS)
	$(Q)set -e; for f in $(FUZZ_BINS); do \
		mkdir -p build-fuzz/corpus-$$(basename $$f); \
		$$f -max_total_time=$(FUZZ_TIME) -max_len=65536 \
			build-fuzz/corpus-$$(basename $$f) tests/fuzz/seeds-$$(basename $$f); \
	done

# --- benchmarks ---------------------------------------------------------------
# make bench: the live-migration suite (perf/bench_live.py) against the
# machine's limits; markdown tables on stdout, raw figures in
# $(BUILD)/bench.json. BENCH_QUICK=1: 1 GiB guests, fewer runs.
# BENCH_ARGS passes more options (e.g. BENCH_ARGS="--only limits,random").
BENCH_QUICK ?= 0
BENCH_ARGS ?=
bench: deps
	$(Q)$(MAKE) --no-print-directory $(BUILD)/migd $(BUILD)/migd-limits
	$(Q)$(PYTHON) perf/bench_live.py --build $(BUILD) \
		$(if $(filter 1,$(BENCH_QUICK)),--quick) \
		--json $(BUILD)/bench.json $(BENCH_ARGS)

# --- the rest -----------------------------------------------------------------
demo: deps all
	$(Q)bash contrib/demo.sh $(BUILD)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h')
format:
	$(Q)clang-format -i $(FORMAT_SRCS)
format-check:
	$(Q)clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-asan build-fuzz

help:
	@echo "make [all]     build build/migd and build/migctl"
	@echo "make check     install deps if missing, build, run unit + system tests"
	@echo "make demo      install deps if missing, build, run the demo"
	@echo "make bench     live-migration benchmarks (BENCH_QUICK=1: short)"
	@echo "make asan      unit + system tests under ASan/UBSan (build-asan/)"
	@echo "make fuzz      libFuzzer targets for FUZZ_TIME seconds each"
	@echo "make qemu      install QEMU 7.2 and 10.0 for the interop tests"
	@echo "make format    clang-format every source file"

-include $(BUILD)/contrib/ramdigest.d
-include $(BUILD)/perf/limits.d
-include $(LIB_OBJS:.o=.d) $(BUILD)/control/main.d $(BUILD)/contrib/migctl.d \
	$(MIGCTL_OBJS:.o=.d)
