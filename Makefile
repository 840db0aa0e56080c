# Two entry points: `make demo` runs the whole workflow on the embedded demo
# data, `make test` runs the test suite. Both create .venv and install the
# package (with its test extras) on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test install protos clean

$(STAMP): setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[cpu,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) tools/run_demo.py --output_dir demo_output

# The whole suite runs with oneDNN forced on (TensorFlow's default on AVX-512 CPUs, which
# CI may or may not have), then the kernel-heavy extraction and model tests again with it
# forced off, so a difference between the two CPU kernel paths cannot hide. Lint first
# (ruff, configured in pyproject.toml); the tree is not ruff-formatted, so no format check.
test: $(STAMP)
	$(PY) -m ruff check .
	TF_ENABLE_ONEDNN_OPTS=1 $(PY) -m pytest -q tests
	TF_ENABLE_ONEDNN_OPTS=0 $(PY) -m pytest -q tests/extraction tests/models

# Recompiles protos/*.proto into delf_tf/protos/descriptor_set.pb, the descriptor
# set the delf_tf/protos/*_pb2 modules build their messages from (no generated
# Python code, so no pin to one protobuf runtime version); tests/protos checks that
# the committed set matches the .proto files.
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -Idelf_tf/protos=protos --include_imports \
		--descriptor_set_out=delf_tf/protos/descriptor_set.pb protos/*.proto

clean:
	rm -rf $(VENV) build *.egg-info
