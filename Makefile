# stellarflow — `make help` lists every target.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Toil finds its worker (and cwltool a module's command) through PATH; the podman wrapper first.
export PATH := $(CURDIR)/scripts/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# Python modules (containers/<name>/ with `language: python`): installed in the venv for their
# tests and --no-container runs; their images install only their own locks.
PY_MODULES := $(patsubst %/module.yml,%,$(shell grep -l '^language: python' containers/*/module.yml))
# Compiled modules (`language: c`): built into the venv's bin for tests and --no-container runs.
C_MODULES := $(patsubst %/module.yml,%,$(shell grep -l '^language: c' containers/*/module.yml))
# make test: the end-to-end tests must run the steps in their images.
export STELLARFLOW_TEST_CONTAINERS ?= 1
JOBS   ?= 2
SITE   ?= local
DEMO_STARS ?= 24

.PHONY: help install lock demo test test-slow lint images export-images import-images \
        validate-site bench bench-trigger bench-scale sizing airflow-venv bench-wes serve nats-up nats-down slurm-up \
        slurm-down sge-up sge-down release import-release clean science-figures science-cost

help: ## list every target
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## venv with pinned deps + system packages (idempotent)

$(STAMP): pyproject.toml requirements.lock scripts/install-system containers/contracts/pyproject.toml \
          $(addsuffix /pyproject.toml,$(PY_MODULES)) $(wildcard jobstore_config/toil-plugin/*/*.py) \
          $(foreach m,$(C_MODULES),$(wildcard $(m)/src/*) $(m)/Makefile) $(wildcard containers/contracts/c/*)
	scripts/install-system
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e . -e containers/contracts $(addprefix -e ,$(PY_MODULES))
	$(PY) -m pip install -q --no-deps --force-reinstall jobstore_config/toil-plugin
	$(foreach m,$(C_MODULES),$(MAKE) -s -C $(m) BUILD=$(CURDIR)/$(VENV)/bin &&) true
	touch $@

lock: ## regenerate requirements.lock from the current venv
	$(PY) -m pip freeze --exclude-editable | sed '1i # Full pinned dependency set for the project venv (pip freeze). Regenerate: make lock' > requirements.lock

demo: install images ## generate ~24 stars, run them under Toil, print the catalogue
	rm -rf build/demo
	$(PY) scripts/generate_observation.py build/demo/obs --stars $(DEMO_STARS) --days 30 --seed 1 --observation-id demo
	$(VENV)/bin/stellarflow run build/demo/obs/manifest.yaml --outdir build/demo/out --site $(SITE)
	$(PY) -c "from astropy.table import Table; t = Table.read('build/demo/out/demo/catalogue.ecsv'); t.pprint(max_lines=-1, max_width=200)"
	@echo "Report: $(CURDIR)/build/demo/out/demo/report.html"

test: install images ## the default test suite (pytest-xdist), ~30 min at most
	$(PY) -m pytest -n $(JOBS) -m "not slow"

test-slow: install images ## the slow tests only
	$(PY) -m pytest -n $(JOBS) -m slow

science-figures: install ## completeness + false alarms, 600 synthetic stars -> docs/science.md
	$(PY) scripts/science_figures.py --jobs $(JOBS)

science-cost: install ## science CPU per star and module, 30-730 d at 25 s -> docs/science.md table, docs/figures/science_cost.png
	$(PY) scripts/science_cost.py --markdown --json build/science-cost.json --plot docs/figures/science_cost.png

lint: install ## ruff
	$(VENV)/bin/ruff check containers triggers dummy_pipeline scripts tests jobstore_config/toil-plugin

images: install ## build every container image that changed (podman, offline)
	scripts/build-images

export-images: images ## write image archives + digest list to build/images/
	scripts/build-images --export build/images

import-images: install ## load image archives: make import-images DIR=path
	scripts/build-images --import $(DIR)

# With RELEASE=dir the images are the release's (make import-release): nothing to build.
validate-site: install $(if $(RELEASE),,images) ## run the Dummy Pipeline feature suite: make validate-site SITE=local [RELEASE=dir]
	$(VENV)/bin/stellarflow validate-site --site $(SITE) $(if $(RELEASE),--release $(RELEASE))

RELEASE_DIR ?= build/release
release: install images ## release folder: packed CWL pinned by image id, image archive, RO-Crate, checksums
	$(PY) -m stellarflow.release build --out $(RELEASE_DIR)

import-release: install ## load a release on this checkout: make import-release DIR=path
	$(PY) -m stellarflow.release import $(DIR)

bench: install images ## Toil vs cwltool vs Airflow, chains of 100 tiny tasks -> build/bench/latest.json (SKIP_AIRFLOW=1: no Airflow)
	$(PY) scripts/bench.py $(if $(SKIP_AIRFLOW),--skip-airflow)

bench-trigger: install images ## trigger service: latency to Toil start, 2 000-manifest burst (~50 min) -> build/bench/trigger.json
	$(PY) scripts/bench_trigger.py

SIZES ?= 240x60,2400x10,10000x5
bench-scale: install images ## cost vs stars (SIZES=240x60,...) -> build/bench/scale.{json,md}, docs/figures/scale.png
	$(PY) scripts/bench_scale.py --sizes $(SIZES)

sizing: install ## PLATO sizing (200 000 stars x 2 years in 24 h on Slurm) from build/bench/*.json
	$(PY) scripts/sizing.py

airflow-venv: ## Airflow 3's own venv (build/tools/airflow) from scripts/tool-venvs/airflow.txt
	scripts/tool-venv airflow

bench-wes: install ## WES API under load: 50 pollers while 20 runs are submitted -> build/bench/wes.json
	$(PY) scripts/bench_wes.py

STATE ?= build/serve/state
DATA  ?= build/serve/data
serve: install ## WES API + page on 127.0.0.1:8080 over STATE (make serve STATE=... DATA=...)
	mkdir -p $(DATA)
	$(VENV)/bin/stellarflow serve --state $(STATE) --data-root $(DATA)

nats-up: install ## start the local NATS server with JetStream (127.0.0.1:4222)
	scripts/nats-server up

nats-down: ## stop the local NATS server
	scripts/nats-server down

slurm-up: install ## start the local Slurm cluster (NODES=3: three nodes; docs/slurm.md)
	scripts/slurm-cluster up --nodes $(or $(NODES),1)

slurm-down: ## stop the local Slurm cluster
	scripts/slurm-cluster down

sge-up: install ## start the local Grid Engine cell
	scripts/sge-cluster up

sge-down: ## stop the local Grid Engine cell
	scripts/sge-cluster down

clean: ## remove build outputs (keeps the venv and images)
	rm -rf build .pytest_cache
