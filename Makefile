# Agenda — top-level build.
#
#   make deps        install the Debian packages the build and tests need
#   make             build raft_agent and the simulator (optimised)
#   make SANITIZER=1 the same with ASan + UBSan, into build/san
#   make module      the nginx module: build/nginx/ngx_http_agenda_module.so
#   make test        every test: unit + simulation (sanitized), fuzz corpus
#                    replay, real-process cluster tests, edge (nginx) tests
#   make bench       benchmarks; each figure is a "bench <name> <value> <unit>" line
#   make run         start the local cluster (see README)

CC        ?= cc
PYTHON    := /usr/bin/python3
SIM_SEEDS ?= 1000

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
        -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla \
        -Wcast-qual -Wundef
INCS := -Iraft_agent -Iraft_agent/raft -Iraft_agent/agenda -Irouter \
        -Ingx_agenda_module/lib

ifeq ($(SANITIZER),)
BUILD ?= build/release
OPT   := -O2 -g
else
BUILD ?= build/san
OPT   := -O1 -g -fno-omit-frame-pointer \
         -fsanitize=address,undefined -fno-sanitize-recover=all
endif

CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) $(INCS) -MMD -MP
LDFLAGS += $(filter -fsanitize%,$(OPT))
LIBS    := -llmdb -ljansson -levent -levent_openssl -ljwt -largon2 -lssl \
           -lcrypto -lm
TESTLIBS := -lcmocka

CORE_SRC   := $(wildcard raft_agent/raft/*.c)
AGENT_SRC  := $(filter-out raft_agent/main.c,$(wildcard raft_agent/*.c)) \
              $(wildcard raft_agent/agenda/*.c)
ROUTER_SRC := $(wildcard router/*.c)
# nginx-free code of the edge (JWT, passwords, REST flows): unit-tested here
EDGE_LIB_SRC := $(wildcard ngx_agenda_module/lib/*.c)
SIM_SRC    := $(wildcard tests/sim/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJ    := $(call obj,$(CORE_SRC) $(AGENT_SRC) $(ROUTER_SRC) \
                          $(EDGE_LIB_SRC))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

.PHONY: all deps test test-unit test-sim test-fuzz test-cluster test-edge \
        test-stack \
        bench run clean sim-seeds module
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BUILD)/raft_agent $(BUILD)/raft_sim

deps:
	@config/deps.sh

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libagenda.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/raft_agent: $(call obj,raft_agent/main.c) $(BUILD)/libagenda.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/raft_sim: $(call obj,$(SIM_SRC)) $(BUILD)/libagenda.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/bench_agenda: $(BUILD)/obj/tests/bench/bench_agenda.o $(BUILD)/libagenda.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libagenda.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(TESTLIBS) $(LIBS)

# --- the nginx module ------------------------------------------------------
#
# Built the way Debian builds its own nginx modules: against the sources of
# the installed nginx (nginx-dev's /usr/share/nginx/src), configured with the
# installed binary's exact flags (conf_flags, which include --with-compat),
# so that the packaged /usr/sbin/nginx accepts it in `load_module`.  The
# sources are copied under build/ (configure writes into its tree); configure
# runs again only when the module's `config` or the nginx sources change.

NGINX_SRC   := /usr/share/nginx/src
NGINX_BUILD := build/nginx-src
MODULE_SO   := build/nginx/ngx_http_agenda_module.so
MODULE_DEPS := $(wildcard ngx_agenda_module/*.c ngx_agenda_module/*.h) \
               $(EDGE_LIB_SRC) $(wildcard ngx_agenda_module/lib/*.h) \
               $(ROUTER_SRC) $(wildcard router/*.h) \
               raft_agent/agenda/validate.c raft_agent/agenda/tz_names.c \
               raft_agent/agenda/json_text.c raft_agent/buf.c raft_agent/buf.h \
               $(wildcard raft_agent/agenda/*.h)

module: $(MODULE_SO)

# The module's `config` lists lib/*.c when configure runs: configure again
# when that list changes (the file is rewritten only then).
EDGE_LIB_LIST := build/edge-lib-srcs.txt
$(shell mkdir -p build && echo '$(sort $(EDGE_LIB_SRC))' | \
    cmp -s - $(EDGE_LIB_LIST) || echo '$(sort $(EDGE_LIB_SRC))' > $(EDGE_LIB_LIST))

$(NGINX_BUILD)/objs/Makefile: ngx_agenda_module/config $(NGINX_SRC)/conf_flags \
                              $(EDGE_LIB_LIST)
	@test -r $(NGINX_SRC)/configure || \
	    { echo "$(NGINX_SRC) missing: run make deps (nginx-dev)" >&2; exit 1; }
	rm -rf $(NGINX_BUILD) && mkdir -p $(dir $(NGINX_BUILD))
	cp -a $(NGINX_SRC) $(NGINX_BUILD)
	cd $(NGINX_BUILD) && bash -c '. ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(CURDIR)/ngx_agenda_module' \
	    > configure.log 2>&1 || \
	    { tail -n 30 configure.log >&2; rm -f objs/Makefile; exit 1; }

$(MODULE_SO): $(NGINX_BUILD)/objs/Makefile $(MODULE_DEPS)
	$(MAKE) -C $(NGINX_BUILD) -f objs/Makefile modules
	@mkdir -p $(dir $@)
	# a new file renamed into place: an nginx still running (make run, a
	# benchmark) keeps its mapping of the old one instead of crashing
	cp $(NGINX_BUILD)/objs/ngx_http_agenda_module.so $@.tmp
	mv -f $@.tmp $@

# --- tests -----------------------------------------------------------------

test: deps
	$(MAKE) SANITIZER=1 test-unit test-sim
	$(MAKE) test-fuzz
	$(MAKE) all
	$(MAKE) test-cluster
	$(MAKE) module
	$(MAKE) test-edge
	@echo "all test stages passed"

test-unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test-sim: $(BUILD)/raft_sim
	$(BUILD)/raft_sim --seeds $(SIM_SEEDS) --nodes 3
	$(BUILD)/raft_sim --seeds $(SIM_SEEDS) --nodes 5
	$(BUILD)/raft_sim --scenario figure8

# any number of seeds: make sim-seeds FROM=1000 COUNT=100000 NODES=5
sim-seeds: $(BUILD)/raft_sim
	$(BUILD)/raft_sim --first-seed $(or $(FROM),1) --seeds $(or $(COUNT),10000) \
	    --nodes $(or $(NODES),3)

# libFuzzer targets, built with clang; `make test` replays each corpus.
FUZZ_BUILD := build/fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -g -O1 $(INCS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_BIN := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))

FUZZ_LIB_OBJ := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(CORE_SRC) $(AGENT_SRC) \
                $(ROUTER_SRC) $(EDGE_LIB_SRC))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB_OBJ)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)

test-fuzz: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	    echo "== replay $$n"; \
	    $$f -runs=0 tests/fuzz/corpus/$$n; done

# LD_PRELOAD shims for tests: syncs made slow (tests/cluster/slow_sync.c),
# or failing as on a full disk (tests/cluster/full_disk.c), a digest held
# (tests/cluster/held_digest.c)
$(BUILD)/%.so: tests/cluster/%.c tests/cluster/shim_real.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -fPIC -shared -o $@ $< -ldl

test-cluster: all $(BUILD)/slow_sync.so $(BUILD)/held_digest.so
	cd tests/cluster && AGENDA_BUILD=$(CURDIR)/$(BUILD) $(PYTHON) -m pytest -q -x -p no:cacheprovider .

# The Docker Swarm stack, built and deployed on this machine's Docker engine.
# Not part of `make test`: it needs a running dockerd (docker/README.md).
test-stack: deps
	cd tests/docker && $(PYTHON) -m pytest -q -x -p no:cacheprovider -s .

# Through nginx: the packaged /usr/sbin/nginx with our module, on free ports.
test-edge: module all $(BUILD)/full_disk.so
	cd tests/edge && AGENDA_MODULE=$(CURDIR)/$(MODULE_SO) \
	    AGENDA_BUILD=$(CURDIR)/$(BUILD) \
	    $(PYTHON) -m pytest -q -x -p no:cacheprovider .

bench: deps all module $(BUILD)/bench_agenda
	@tests/bench/run.sh $(CURDIR)/$(BUILD)

run: deps all module
	@config/run-local $(CURDIR)/$(BUILD)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
