# vmsd — the two commands a newcomer needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROTO_SRC := $(wildcard proto/vmsd/v1/*.proto)
GEN_DIR := src/vmsd/v1
# Where `make install` links vmsd and vmsctl (when it may write there, i.e. as root).
BINDIR ?= /usr/local/bin
DEBIAN_PACKAGES := ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-tools sqlite3 procps systemd \
	chromium etcd-server etcd-client vlc-bin vlc-plugin-base
# vlc-bin, vlc-plugin-base: VLC's RTSP server, a camera stack neither vmsd nor GStreamer wrote (tests/e2e).
# What `make deb` needs besides: Debian's python3.11 with venv (the package's venv runs on it) and dpkg-deb.
DEB_BUILD_PACKAGES := python3.11-venv dpkg

.PHONY: install deps deb-deps venv proto bin deb wheel demo test test-fast lint typecheck bench bench-smoke bench-deps soak clean

install: deps venv proto bin ## idempotent bootstrap: Debian packages, .venv, generated gRPC code, commands on PATH

# Install the Debian packages in $(1) that are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps: .stamp-deps
.stamp-deps:
	$(call apt_install,$(DEBIAN_PACKAGES))
	@touch $@

deb-deps: .stamp-deb-deps
.stamp-deb-deps:
	$(call apt_install,$(DEB_BUILD_PACKAGES))
	@touch $@

venv: $(VENV)/.stamp
# constraints.txt: the versions CI tested (pyproject.toml has only the floors the code needs).
$(VENV)/.stamp: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,report]'
	@touch $@

proto: $(GEN_DIR)/.stamp
$(GEN_DIR)/.stamp: $(PROTO_SRC) $(VENV)/.stamp
	@mkdir -p $(GEN_DIR)
	@if [ -n "$(PROTO_SRC)" ]; then \
		$(PY) -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src \
			--pyi_out=src $(PROTO_SRC); \
		touch $(GEN_DIR)/__init__.py; \
	fi
	@touch $@

# vmsd and vmsctl on PATH: links in $(BINDIR) when it is writable, else the line that does it.
# A file of the same name that is not a link (another program) is never replaced.
bin:
	@venv_bin="$(abspath $(VENV))/bin"; \
	if [ -d "$(BINDIR)" ] && [ -w "$(BINDIR)" ]; then \
		for tool in vmsd vmsctl; do \
			if [ -e "$(BINDIR)/$$tool" ] && [ ! -L "$(BINDIR)/$$tool" ]; then \
				echo "$(BINDIR)/$$tool is not ours: left alone (use $$venv_bin/$$tool)"; \
			else \
				ln -sfn "$$venv_bin/$$tool" "$(BINDIR)/$$tool" && echo "$(BINDIR)/$$tool -> $$venv_bin/$$tool"; \
			fi; \
		done; \
	else \
		echo "vmsd and vmsctl are in $$venv_bin (no write access to $(BINDIR)); to run them by name:"; \
		echo "  export PATH=\"$$venv_bin:\$$PATH\""; \
	fi

deb: deb-deps proto ## the Debian package for recorder boxes: dist/vmsd_<version>_<arch>.deb (docs/install.md)
	scripts/build-deb.sh dist

wheel: proto ## vmsd's wheel, generated gRPC code included: dist/vmsd-<version>-py3-none-any.whl
	scripts/build-wheel.sh $(PY) dist

demo: install ## simulator + daemon on config/demo.toml, recording into ./var/demo
	$(PY) scripts/demo.py

test: install deb-deps ## the whole test suite (deb-deps: the package test builds a .deb)
	$(PY) -m pytest -q --durations=25

test-fast: install ## unit tests only (no simulator)
	$(PY) -m pytest -q -m "not slow"

soak: install ## the reliability suite at full counts (50 crashes, 100 camera faults, ...); figures in var/reliability
	VMSD_SOAK=1 VMSD_RELIABILITY_RESULTS=$${VMSD_RELIABILITY_RESULTS:-var/reliability} \
		$(PY) -m pytest -q -m reliability -o timeout=3600 tests/reliability

lint: install
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	PYTHONPATH=src $(VENV)/bin/lint-imports --no-cache  # the layer contract in pyproject.toml; src of this checkout

typecheck: install
	$(VENV)/bin/mypy

bench-deps: install $(VENV)/.stamp-bench
$(VENV)/.stamp-bench: pyproject.toml constraints.txt
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,bench]'
	@touch $@

bench: bench-deps ## the benchmark suite (~1.5-2 h on a quiet machine): bench/report.md + PNG plots
	$(PY) bench/run.py

bench-smoke: bench-deps ## the same scenarios with tiny parameters (~1.5 min), report in var/bench-smoke
	$(PY) bench/run.py --smoke --out var/bench-smoke

clean:
	rm -rf $(VENV) $(GEN_DIR) .stamp-deps .stamp-deb-deps dist build .pytest_cache .mypy_cache var
