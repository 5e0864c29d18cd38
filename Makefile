# Two commands on a fresh machine: `make demo` and `make test` (each sets up .venv first).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pinned to the builds this project is tested with (pip takes them from local disk here)
TORCH  ?= torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test bench serve clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	mkdir -p outputs
	$(BIN)/python -m autoinpaint remove samples/catalogue_sticker.jpg --point 527,442 \
		-o outputs/catalogue_sticker.jpg --preview outputs/catalogue_sticker_preview.png
	@echo "wrote outputs/catalogue_sticker.jpg and outputs/catalogue_sticker_preview.png"

test: setup
	$(BIN)/python -m pytest -q -n 2

serve: setup
	$(BIN)/python -m autoinpaint serve samples/

bench: setup
	$(BIN)/python benchmarks/bench_foundation.py

clean:
	rm -rf outputs .pytest_cache
