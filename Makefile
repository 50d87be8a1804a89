# grapevine: thin Makefile over CMake. The README's two commands are
# `make demo` and `make test`; both install missing Debian packages first.

JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
BUILD_DIR   ?= build
TEST_DIR    ?= build-test
CMAKE       ?= cmake
CTEST_ARGS  ?= --output-on-failure --timeout 600

.PHONY: all deps deps-bench build build-test test demo bench-wal bench-cluster bench-map bench-members bench-members-idle \
        bench-catchup test-catchup sim fuzz clean help

all: build

help:
	@echo "make build      build the release binary at $(BUILD_DIR)/grapevine"
	@echo "make test       build with ASan+UBSan and run the whole test suite"
	@echo "make demo       start a local 5-agent cluster"
	@echo "make bench-wal  WAL benchmark beside this machine's raw disk figures"
	@echo "make bench-cluster  10/40/100 local agents vs Serf, HTTP GET vs an h2o hello-world, sustained writes"
	@echo "make bench-snapshot copy-on-write snapshots of 1M keys: capture, to disk, write latency, restore, memory"
	@echo "make bench-map  random lookups in the store's map of 1M keys beside std::map"
	@echo "make bench-members  kill -9 of an agent until all list it failed, 10/40/100 agents vs Serf"
	@echo "make bench-members-idle  40 idle agents for 10 minutes: false suspicions/failures"
	@echo "make bench-catchup  an agent that missed 1M updates catching up by deltas and by snapshot"
	@echo "make test-catchup  real agents: one misses 100,000 writes, catches up by deltas and by snapshot"
	@echo "make sim        the 10,000-node simulation table (writes docs/simulation.md)"
	@echo "make fuzz       every libFuzzer target for FUZZ_SECONDS each (default 600)"

deps:
	@scripts/install-deps.sh test

deps-bench:
	@scripts/install-deps.sh bench

$(BUILD_DIR)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGV_BUILD_TESTS=ON

build: deps $(BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

$(TEST_DIR)/CMakeCache.txt:
	$(CMAKE) -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DGV_SANITIZE=ON -DGV_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g"

build-test: deps $(TEST_DIR)/CMakeCache.txt
	$(CMAKE) --build $(TEST_DIR) -j $(JOBS)

test: build-test
	cd $(TEST_DIR) && ctest $(CTEST_ARGS) -j $(JOBS)

# make demo DEMO_FLAGS="--nodes 10 --durability interval" passes flags to `grapevine demo`.
DEMO_FLAGS ?=
demo:
	@scripts/install-deps.sh build
	@$(MAKE) --no-print-directory build
	$(BUILD_DIR)/grapevine demo $(DEMO_FLAGS)

bench-wal: deps-bench build
	$(BUILD_DIR)/bench/wal_bench --dir $(BUILD_DIR)/bench-wal-data

# Snapshots of a 1M-key store beside raw disk and std::map figures measured in
# the same run (docs/benchmarks.md). Extra options go in BENCH_SNAPSHOT_ARGS
# (e.g. BENCH_SNAPSHOT_ARGS="--rounds 3 --skip-options").
BENCH_SNAPSHOT_ARGS ?=
bench-snapshot: deps-bench build
	$(BUILD_DIR)/bench/snapshot_bench --dir $(BUILD_DIR)/bench-snapshot-data $(BENCH_SNAPSHOT_ARGS)

# Random lookups in the store's map beside std::map with the same keys, in the
# same run (docs/benchmarks.md).
bench-map: build
	$(BUILD_DIR)/bench/map_lookup_bench

# Local clusters of real agents beside Serf and a libh2o hello-world, measured in
# the same run (docs/benchmarks.md). About 10 minutes; extra options go in
# BENCH_CLUSTER_ARGS (e.g. BENCH_CLUSTER_ARGS="--sizes 10 --wrk-rounds 3").
BENCH_CLUSTER_ARGS ?=
bench-cluster: deps-bench build
	$(BUILD_DIR)/bench/cluster_bench --grapevine $(BUILD_DIR)/grapevine \
	  --h2o-hello $(BUILD_DIR)/bench/h2o_hello $(BENCH_CLUSTER_ARGS)

# Failure detection of 10, 40 and 100 local agents beside Serf agents in the same
# run (issue 6; docs/benchmarks.md). Extra options go in BENCH_MEMBERS_ARGS
# (e.g. BENCH_MEMBERS_ARGS="--sizes 10 --kills 5"). bench-members-idle runs 40
# idle agents for BENCH_MEMBERS_IDLE_MINUTES (default 10) counting false failures.
BENCH_MEMBERS_ARGS ?=
BENCH_MEMBERS_IDLE_MINUTES ?= 10
bench-members: deps-bench build
	$(BUILD_DIR)/bench/members_bench --grapevine $(BUILD_DIR)/grapevine $(BENCH_MEMBERS_ARGS)

bench-members-idle: deps-bench build
	$(BUILD_DIR)/bench/members_bench --grapevine $(BUILD_DIR)/grapevine \
	  --idle-minutes $(BENCH_MEMBERS_IDLE_MINUTES) $(BENCH_MEMBERS_ARGS)

# An agent that missed 1M updates catching up, once by deltas from the peers'
# catch-up tail and once by snapshot (issue 5; docs/benchmarks.md). Extra
# options go in BENCH_CATCHUP_ARGS (e.g. BENCH_CATCHUP_ARGS="--updates 200000 --rounds 3").
BENCH_CATCHUP_ARGS ?=
bench-catchup: deps-bench build
	$(BUILD_DIR)/bench/catchup_bench --grapevine $(BUILD_DIR)/grapevine $(BENCH_CATCHUP_ARGS)

# Issue 5's catch-up with real agents at full size: an agent misses 100,000
# writes and catches up by deltas, then by snapshot (release build, ~2 min).
CATCHUP_KEYS ?= 100000
test-catchup: build
	GV_CATCHUP_KEYS=$(CATCHUP_KEYS) $(BUILD_DIR)/tests/integration/integration_test \
	  --test-case='*catches up by*' --duration=true

sim: build
	scripts/sim-table.sh $(BUILD_DIR)/grapevine

FUZZ_DIR     ?= build-fuzz
FUZZ_SECONDS ?= 600
# FUZZ_TARGETS="dns_request_fuzz snapshot_decode_fuzz" runs only those.
FUZZ_TARGETS ?=
fuzz: deps
	CC=clang CXX=clang++ $(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGV_FUZZ=ON \
	  -DGV_BUILD_TESTS=OFF -DGV_WERROR=OFF
	$(CMAKE) --build $(FUZZ_DIR) -j $(JOBS)
	scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD_DIR) $(TEST_DIR)
