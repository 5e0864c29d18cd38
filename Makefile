# Two commands on a fresh machine: `make demo` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pinned to the builds this project is tested with (pip takes them from local disk here)
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	mkdir -p outputs
	$(BIN)/python -m autoinpaint remove samples/mug_sticker.jpg --point 540,470 \
		-o outputs/mug_clean.jpg --preview outputs/mug_preview.png
	@echo "wrote outputs/mug_clean.jpg and outputs/mug_preview.png"

test: setup
	$(BIN)/python -m pytest -q -n 2

bench: setup
	$(BIN)/python benchmarks/bench_foundation.py

clean:
	rm -rf outputs .pytest_cache
