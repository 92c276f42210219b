# akhbar: make serve | make test (each runs `setup` first when .venv is missing or stale).

PY     = .venv/bin/python
PIP    = $(PY) -m pip
PORT  ?= 3000
# Real datasets live outside the repository (issue 2); the code resolves this against the
# repository root.
AKHBAR_DATA ?= ../shared/data
export AKHBAR_DATA

.PHONY: setup browser serve test bento demo models eval bench loadtest fuzz audit

# ---------------------------------------------------------------------------------------
# setup: the virtual environment from the constraints file. The stamp makes setup rerun
# when pyproject.toml or constraints.txt change. (The reading-page tests of issue 9 will add
# `browser` here once they exist.)
setup: .venv/.stamp

.venv/.stamp: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt setuptools wheel
	$(PIP) install -c constraints.txt -e ".[dev]"
	touch $@

# Debian's chromium for the real-browser tests (issue 9). As root: install it with apt
# (failures stop make). Otherwise: print the one command to run.
browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "browser: $$(command -v chromium)"; \
	elif [ "$$(id -u)" -eq 0 ]; then \
	  echo "browser: installing chromium with apt-get (about a minute)"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	else \
	  echo "browser: chromium is missing; the browser tests need it. Run:"; \
	  echo "  sudo apt-get update && sudo apt-get install -y chromium"; \
	fi

# ---------------------------------------------------------------------------------------
serve: setup
	.venv/bin/akhbar serve --port $(PORT)

test: setup
	$(PY) -m pytest -q

# A Bento (bentofile.yaml): it installs the akhbar wheel, so build that first.
bento: .venv/.stamp
	rm -rf dist
	$(PIP) wheel . --no-deps --no-build-isolation -w dist
	.venv/bin/bentoml build

# pip-audit is a tool, not a dependency: installed on demand, audited against the pins.
# --disable-pip --no-deps reads the pinned versions as written (no throwaway venv);
# --strict fails, naming the package, when a vulnerability database cannot be reached,
# instead of printing an all-clear for packages it skipped.
audit: .venv/.stamp
	$(PIP) install -c constraints.txt pip-audit
	.venv/bin/pip-audit --strict --disable-pip --no-deps -r constraints.txt

# Start the service on DEMO_PORT, score the sample article (serving/service.py), print it
# readably, stop the service. Uses the same models as `make serve`.
DEMO_PORT ?= 3001
demo: setup
	$(PY) -m akhbar.serving.demo --port $(DEMO_PORT)

# ---------------------------------------------------------------------------------------
# Targets that later issues fill in.

# ---------------------------------------------------------------------------------------
# make models: every shipped model from $(AKHBAR_DATA), in resumable stages. Each stage
# leaves a stamp in .stamps/; an interrupted run resumes at the stage it stopped in (and
# pretraining resumes from its last checkpoint).
STAMPS   = .stamps
BASE_DIR = models/default/base
PRETRAIN_FLAGS ?= --objective electra --embedding_init word2vec --max_steps 4800 \
                  --batch_size 32 --learning_rate 1e-3 --warmup_steps 100 --save_steps 200

models: $(STAMPS)/base $(STAMPS)/base-report

$(STAMPS)/base: .venv/.stamp
	@mkdir -p $(STAMPS)
	.venv/bin/akhbar pretrain $(PRETRAIN_FLAGS) --work_dir work/pretrain --output_dir work/pretrain/base
	$(PY) -m akhbar.training.ship work/pretrain/base $(BASE_DIR)
	touch $@

# Evidence that the base helps: base vs random init vs TF-IDF, same recipe, one run.
$(STAMPS)/base-report: $(STAMPS)/base
	$(PY) -m akhbar.training.base_report --bases $(BASE_DIR) --output_dir reports/base \
	  --model_card $(BASE_DIR)/README.md
	touch $@

eval:
	@echo "make eval: not implemented yet (see issue 4)" >&2; exit 1

bench:
	@echo "make bench: not implemented yet (see issue 7)" >&2; exit 1

loadtest:
	@echo "make loadtest: not implemented yet (see issue 8)" >&2; exit 1

fuzz:
	@echo "make fuzz: not implemented yet (see issue 8)" >&2; exit 1
