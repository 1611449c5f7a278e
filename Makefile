# rddm: the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch and torchvision from this machine's disk (the evaluation metrics need torchvision;
# torch 2.13.0's CPU build has no matching torchvision here). See README for other machines.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
STAMP  := $(VENV)/.rddm-installed
SHARED ?= ../shared/data
DEMO_OUT ?= out/demo

.PHONY: all demo test lint format system-deps sample bench bench-engine bench-gpu tile-error tile-timing eval eval-subset eval-figures eval-noise-free eval-issue-protocol ablation-adapters ablation-scratch preview-figure before-after clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[model,engine,eval,ui,test]"
	touch $@

# darktable (real-darktable tests), Xvfb and Lua come from Debian; only root can install them.
# QT_DEPS: what PyQt6's wheels load on a bare Debian (offscreen and xcb platforms, fonts).
QT_DEPS := libegl1 libgl1 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 libxkbcommon0 \
  libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 fonts-dejavu-core
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  if ! command -v darktable-cli >/dev/null || ! command -v Xvfb >/dev/null || ! command -v lua5.4 >/dev/null \
	     || ! dpkg -s $(QT_DEPS) >/dev/null 2>&1; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q darktable xvfb xauth lua5.4 $(QT_DEPS) >/dev/null \
	    || (apt-get update -q >/dev/null && apt-get install -y -q darktable xvfb xauth lua5.4 $(QT_DEPS) >/dev/null); \
	  fi; \
	else echo "system-deps: not root or no apt-get; tests that need darktable will be skipped"; fi

demo: $(STAMP)
	@echo "== rddm info on the bundled sample (a CFA DNG synthesized from Kodak's kodim23, ISO 3200 noise)"
	$(BIN)/rddm info engine/rddm/data/sample.dng
	@if [ -d "$(SHARED)/srgb-bench/kodak24" ]; then \
	  echo "== rddm synth: RAW pairs from Kodak24 (4 Bayer patterns, ISO 3200 noise, 512x512 crops)"; \
	  $(BIN)/rddm synth $(SHARED)/srgb-bench/kodak24 $(DEMO_OUT)/pairs --patterns RGGB BGGR GRBG GBRG \
	    --iso 3200 --crop 512 --seed 0 --overwrite; \
	else echo "== $(SHARED) not found: skipping the synthesis demo"; fi
	@echo "== rddm restore: the sample with the shipped rddm-tiny, as a LinearRaw DNG and a JPEG"
	mkdir -p $(DEMO_OUT)
	$(BIN)/rddm restore engine/rddm/data/sample.dng --out $(DEMO_OUT) --overwrite
	$(BIN)/rddm restore engine/rddm/data/sample.dng --out $(DEMO_OUT) --format jpeg --overwrite

test: $(STAMP) system-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Benchmarks and evaluation: long, never part of `make test`; figures land in out/.
bench: $(STAMP)
	$(BIN)/rddm bench --model rddm-tiny --sizes 12MP 24MP --out out/bench

# The engine's latencies and overhead only (a real engine process on a 12 MP file).
bench-engine: $(STAMP)
	$(BIN)/rddm bench --model rddm-tiny --suite engine --sizes 12MP --out out/bench

# Tiled against whole-image restores (the guard band's figures in the README).
tile-error: $(STAMP)
	$(BIN)/python scripts/tile_error.py $(SHARED)/raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng \
	  $(SHARED)/srgb-bench/kodak24/kodim05.png

# Per-stage tile times on one CPU thread; channels-last and trimmed region decodes against without.
tile-timing: $(STAMP)
	$(BIN)/python scripts/tile_timing.py --out out/tile-timing

# On a machine with an NVIDIA GPU: CUDA against the CPU, rddm-tiny and SD 2.1-sized rddm-sd21
# timings, and a short training run (scripts/gpu_check.py); results in out/gpu/results.json.
bench-gpu: $(STAMP)
	PYTHONPATH=engine $(BIN)/python scripts/gpu_check.py --out out/gpu \
	  --raw $(SHARED)/raw/plain/isp_mushfiqulalam_nikon/DSC_1339_768x512_rggb.dng \
	  --photo $(SHARED)/srgb-bench/kodak24/kodim05.png --data $(SHARED)/train-srgb

# CMB-LoRA against a shared model and against one trained on RGGB only (canonicalisation by
# shifting), all three trained 500 more steps from the shipped weights (two sides took 10-16 min
# on 2 cores; the classical rows come from eval-subset's results).
ablation-adapters: $(STAMP)
	$(BIN)/python scripts/ablation_adapters.py --out runs/ablation-adapters \
	  $(if $(wildcard out/eval-subset/results.json),--classical-from out/eval-subset/results.json,)

# The fair form: a model with CMB-LoRA, one without adapters and one without adapters trained on
# RGGB only, all from fresh weights with rddm-tiny.yaml for 6000 steps, side by side on one thread
# each (~2 h on 2 cores; one side alone: add SIDES=canonical, ~45 min).
ablation-scratch: $(STAMP)
	$(BIN)/python scripts/ablation_adapters.py --from-scratch --steps 6000 --out runs/ablation-scratch \
	  $(if $(SIDES),--sides $(SIDES),) $(if $(wildcard out/eval-subset/results.json),--classical-from out/eval-subset/results.json,)

# The full sets (hours on a 2-core CPU); eval-subset is the README's table (4 images of each set,
# 256 px crops, BM3D after DHT only: ~15 s of CPU per crop and sigma). Both run darktable-cli's chain
# when darktable is installed.
DARKTABLE_FLAG = $(if $(shell command -v darktable-cli),--darktable,)
eval: $(STAMP)
	$(BIN)/rddm eval --model rddm-tiny $(DARKTABLE_FLAG) --out out/eval

eval-subset: $(STAMP)
	$(BIN)/rddm eval --model rddm-tiny $(DARKTABLE_FLAG) \
	  --images 4 --crop 256 --bm3d-after dht --out out/eval-subset

# The README's docs/eval-psnr.png and docs/eval-crops.jpg from eval-subset's run (the shipped model's rows).
eval-figures: $(STAMP)
	$(BIN)/python scripts/eval_figures.py out/eval-subset --model rddm-tiny=rddm-tiny

# The usual noise-free demosaicking protocol (linear sRGB mosaics, neutral white balance, whole
# images, all four patterns): the training issue's 38.5 / 36.0 dB bars (LibRaw AAHD in the same run).
eval-noise-free: $(STAMP)
	$(BIN)/rddm eval --model rddm-tiny --mosaic srgb --levels none --denoisers none --strengths 0.5 \
	  --out out/eval-noise-free

# The training issue's own noise-free protocol, the one its 38.5 / 36.0 dB bars are set in (RGGB
# mosaics of the encoded sRGB values, 10 px border; bilinear and LibRaw AHD / AAHD in the same run
# reproduce the reference points of ../shared/data/README.md).
eval-issue-protocol: $(STAMP)
	$(BIN)/python scripts/issue_protocol.py --model rddm-tiny --json out/issue-protocol/results.json

# The README's picture of the preview panel: the shipped model on the bundled sample, under Xvfb,
# with an engine of its own that is stopped afterwards (a JPEG: the PNG is 0.6 MB).
preview-figure: $(STAMP)
	mkdir -p out docs
	RDDM_PREVIEW_SETTINGS=out/preview-figure.ini QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \
	  $(BIN)/rddm-preview engine/rddm/data/sample.dng --state-dir out/preview-engine --strength 50 \
	  --screenshot out/preview-panel.png; status=$$?; \
	  $(BIN)/rddm engine stop --state-dir out/preview-engine; test $$status = 0
	$(BIN)/python -c "from PIL import Image; Image.open('out/preview-panel.png').convert('RGB').save('docs/preview-panel.jpg', quality=90, optimize=True)"

# The README's before/after crop (LibRaw AHD against the shipped model) on the bundled sample.
before-after: $(STAMP)
	$(BIN)/python scripts/make_before_after.py engine/rddm/data/sample.dng 300,120,192 docs/before-after.jpg

# Rebuild the bundled sample from Kodak24 (needs ../shared/data); the result is committed.
sample: $(STAMP)
	$(BIN)/python scripts/make_sample.py $(SHARED)/srgb-bench/kodak24/kodim23.png engine/rddm/data/sample.dng

clean:
	rm -rf out .pytest_cache .ruff_cache
