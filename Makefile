# akhbar: make serve | make test (each runs `setup` first when .venv is missing or stale).

PY     = .venv/bin/python
PIP    = $(PY) -m pip
PORT  ?= 3000
# Real datasets live outside the repository: they are third-party data, each under its own
# licence, and are never copied in. The code resolves this against the repository root.
AKHBAR_DATA ?= ../shared/data
export AKHBAR_DATA

.PHONY: setup browser serve test bento demo models base-512 eval eval-outlets bench bench-batch loadtest soak fuzz audit

# ---------------------------------------------------------------------------------------
# setup: the virtual environment from the constraints file, then the browser the
# reading-page test drives (`browser`, below). The stamp makes setup rerun when
# pyproject.toml or constraints.txt change.
setup: .venv/.stamp

.venv/.stamp: pyproject.toml constraints.txt
	python3 -m venv .venv
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt setuptools wheel
	$(PIP) install -c constraints.txt -e ".[train,dev,ray,onnx]"
	$(MAKE) --no-print-directory browser
	touch $@

# Debian's chromium for the reading-page test (tests/serving/test_ui.py), which
# Playwright drives as it is: no browser download. As root: install it with apt (failures
# stop make). Otherwise: print the one command to run.
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
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) -m pytest -q

# The Bento's run-time pins: the wheel's dependencies alone, resolved in a throwaway venv
# against constraints.txt (about a minute); tests/test_packaging.py checks the two agree.
# torch is pinned to its CPU build (+cpu), which bentofile.yaml's extra index serves.
requirements-serve.txt: pyproject.toml constraints.txt
	rm -rf .venv-serve && python3 -m venv .venv-serve
	.venv-serve/bin/pip install -q -c constraints.txt .
	{ echo "# What the service needs at run time: the akhbar wheel's core dependencies (no extras),"; \
	  echo "# pinned to the versions in constraints.txt (a test checks). bentofile.yaml installs these."; \
	  echo "# Regenerate after changing pyproject.toml or constraints.txt: make requirements-serve.txt"; \
	  .venv-serve/bin/pip freeze --exclude akhbar | sed 's/^torch==\([0-9.]*\)$$/torch==\1+cpu/'; } > $@.tmp
	mv $@.tmp $@ && rm -rf .venv-serve

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
	$(PY) -m tools.demo --port $(DEMO_PORT)

# ---------------------------------------------------------------------------------------
# make models: every shipped model from $(AKHBAR_DATA), in resumable stages. Each stage
# leaves a stamp in .stamps/; an interrupted run resumes at the stage it stopped in (and
# pretraining resumes from its last checkpoint).
STAMPS     = .stamps
BASE_DIR   = models/default/base
SHARED_DIR = models/default/shared
# The base: the first version's recipe (128-token single-segment sequences, ELECTRA with a
# word2vec warm start), which is what ships. A second stage (make base-512) continues it on
# sentence pairs ([CLS] A [SEP] B [SEP]) of up to 512 tokens, so every position the task models
# read and both token types are trained; every arm of it so far fine-tuned worse than the
# stage it continued (README, "Base, second version"), so it does not ship until one wins.
PRETRAIN_FLAGS ?= --objective electra --embedding-init word2vec --max-steps 4800 \
                  --batch-size 32 --learning-rate 1e-3 --warmup-steps 100 --save-steps 200
# Arm 5's recipe: positions 128-511 start as copies of the trained ones, the fresh ELECTRA
# generator and detector warm up for 100 steps on the frozen encoder, 338 steps in all.
BASE2_FLAGS ?= --objective electra --segments pairs --seq-len 512 --batch-size 32 \
               --learning-rate 3e-4 --warmup-steps 100 --save-steps 100 --copy-positions 128 \
               --head-warmup-steps 100 --max-steps 338
# Sentence-embedding distillation in stage 2, off unless set, e.g.
#   make base-512 DISTILL_FLAGS="--distill-weight 1 --distill-sentences 200000"
# (the teacher embeds the sentences once, about 9 minutes per 200,000, cached in work/pretrain).
DISTILL_FLAGS ?=

# Each task's own settings are in training/configs/<task>.yaml; these apply to the whole run.
TRAIN_FLAGS ?= --eval-steps 1000

models: $(STAMPS)/base $(STAMPS)/base-report $(STAMPS)/tasks

$(STAMPS)/base-128: .venv/.stamp
	@mkdir -p $(STAMPS)
	.venv/bin/akhbar pretrain $(PRETRAIN_FLAGS) --work-dir work/pretrain --output-dir work/pretrain/base
	touch $@

base-512: $(STAMPS)/base-512
$(STAMPS)/base-512: $(STAMPS)/base-128
	.venv/bin/akhbar pretrain $(BASE2_FLAGS) $(DISTILL_FLAGS) --init-from work/pretrain/base \
	  --work-dir work/pretrain --output-dir work/pretrain/base-512
	touch $@

$(STAMPS)/base: $(STAMPS)/base-128
	$(PY) -m akhbar.training.ship_fp16 work/pretrain/base $(BASE_DIR)
	touch $@

# Evidence that the base helps: base vs random init vs the same-run baseline on topic, ANS and
# unifiedfc validation, each task's own recipe and window lengths, one run (about an hour).
$(STAMPS)/base-report: $(STAMPS)/base
	$(PY) -m akhbar.training.base_report --bases $(BASE_DIR) --output-dir reports/base \
	  --model-card $(BASE_DIR)/README.md
	touch $@

# The service's defaults: one encoder fine-tuned on topic (with its TF-IDF fusion), stance
# against articles (unifiedfc), stance against headlines (ANS, its own labels) and summary at
# once, a head per task; then the topic head is refitted on the summary's windows, so one
# encoder pass serves both (kept only if validation loses <= 0.5 points).
$(STAMPS)/tasks: $(STAMPS)/base
	.venv/bin/akhbar train topic,stance,stance_headline,summary --base-model $(BASE_DIR) --output-dir work/models/shared \
	  $(TRAIN_FLAGS)
	$(PY) -m akhbar.training.refit_shared_windows work/models/shared/bundle --task topic --reads summary
	$(PY) -m akhbar.training.ship_fp16 work/models/shared/bundle $(SHARED_DIR)
	touch $@

# The shipped defaults on every test set, beside their same-run baselines (about 15 minutes).
# Summaries twice: at k sentences, and cut to the references' mean word count (the -words
# folders), where sentence length and the splitter cannot decide the result.
EVAL = .venv/bin/akhbar evaluate --model $(SHARED_DIR)
eval: setup
	$(EVAL) topic --data topic/ant_v2.1_multisource --report reports/topic
	$(EVAL) stance --data stance/unifiedfc_baly2018 --report reports/stance-unifiedfc
	$(EVAL) stance --data stance/ans_khouja2020 --report reports/stance-ans
	$(EVAL) summary --data summary/ant_bbc --summary-sentences 1 --report reports/summary-ant_bbc
	$(EVAL) summary --data summary/easc --split all --summary-sentences 3 --report reports/summary-easc
	$(EVAL) summary --data summary/ant_bbc --summary-sentences 1 --summary-budget reference-words \
	  --report reports/summary-ant_bbc-words
	$(EVAL) summary --data summary/easc --split all --summary-sentences 3 --summary-budget reference-words \
	  --report reports/summary-easc-words
	$(PY) -m akhbar.training.shipped_card $(SHARED_DIR) reports

# Topic on unseen outlets: per outlet, the shipped topic recipe and TF-IDF trained on the same
# articles of the other outlets, scored on the held-out outlet (training/unseen_outlets.py). Hours on
# 2 cores, so not part of `make eval`; resumes with the outlets still missing.
eval-outlets: setup
	$(PY) -m akhbar.training.unseen_outlets --report reports/topic-outlets

# Every performance figure side by side in one run on one machine (benchmarks/README.md), since
# figures from different runs or machines do not compare:
# the service at concurrency 1 and 16 (and 16 with two workers) against a naive one-article
# loop, the GEMM compute limit,
# the accuracy guard of faster variants (full validation splits) and pretraining throughput.
# Writes benchmarks/results/latest.json and latest.md; about 6 minutes on 2 idle cores. Knobs
# (environment or make variables): BENCH_ARTICLES (320), BENCH_C1_ARTICLES (100),
# BENCH_MEDIAN_REPEATS (40), BENCH_ACCURACY_LIMIT (0: whole splits), BENCH_VARIANTS (int8,bf16),
# BENCH_PRETRAIN_STEPS (20), BENCH_PRETRAIN_OBJECTIVES (electra), BENCH_STAGES, BENCH_OUT.
# Quick check: make bench BENCH_ARTICLES=32 BENCH_ACCURACY_LIMIT=40 BENCH_OUT=/tmp/bench
BENCH_FLAGS ?=
bench: .venv/.stamp
	$(PY) benchmarks/run.py $(BENCH_FLAGS)

# Load test (serving/README.md): `akhbar serve` on 127.0.0.1 with the models `make serve`
# would load; a lone request timed before and after; locust at each of LOADTEST_USERS callers
# for LOADTEST_SECONDS each, the quietest level again at the end (503 + Retry-After counted
# apart, as shedding); a burst beyond the queue; the largest legal request beside 8 callers,
# and a caller who leaves mid-request.
# Prints requests/s, p50/p95/p99, shed answers and memory, and fails on a broken rule.
# LOADTEST_SECONDS=20 for a quick check; LOADTEST_FLAGS="--report FILE.json".
LOADTEST_SECONDS ?= 60
LOADTEST_USERS   ?= 8,32,64
LOADTEST_FLAGS   ?=
loadtest: setup
	$(PY) -m tools.loadtest --seconds $(LOADTEST_SECONDS) --users $(LOADTEST_USERS) $(LOADTEST_FLAGS)

# Soak (serving/README.md): `akhbar serve`, its 8-caller capacity measured, then open-loop
# arrivals at 70% of it for SOAK_MINUTES with articles of mixed lengths; resident memory per
# minute to reports/soak/ (PNG and JSON); fails if memory at the end is more than 10% above
# the end of the 5-minute warm-up. SOAK_MINUTES=3 SOAK_FLAGS="--warmup-minutes 1" to try it.
SOAK_MINUTES ?= 30
SOAK_FLAGS   ?=
soak: setup
	$(PY) -m tools.soak --minutes $(SOAK_MINUTES) --plot reports/soak/memory.png \
	  --report reports/soak/soak.json $(SOAK_FLAGS)

# Fuzz (serving/README.md): `akhbar serve` with small limits, FUZZ_PER_ROUTE
# requests per API route generated from its OpenAPI document plus a battery of bad input;
# fails on any 5xx, hang, unexplained refusal or too few 200s. FUZZ_FLAGS="--report FILE.json".
FUZZ_PER_ROUTE ?= 1000
FUZZ_FLAGS     ?=
fuzz: setup
	$(PY) -m tools.fuzz --per-route $(FUZZ_PER_ROUTE) $(FUZZ_FLAGS)

# Batch scoring benchmark: `akhbar score`, local engine and Ray engine (2 actors), against a
# loop that scores one article at a time, on the 2,938 topic test articles with all three
# tasks; each in its own process, so peak memory is its own (reports/batch/bench.md). Then the
# Ray engine's driver and object-store memory at BENCH_BATCH_MEMORY generated records with a
# tiny model (reports/batch/memory.md; flat: at most 50 MB more at the largest size).
# Uses the models the service would. BENCH_BATCH_FLAGS=--limit 30
# BENCH_BATCH_MEMORY=2000,20000 for a quick check.
BENCH_BATCH_FLAGS  ?=
BENCH_BATCH_MEMORY ?= 100000,1000000
bench-batch: .venv/.stamp
	$(PY) -m tools.batch_bench --report reports/batch/bench.md $(BENCH_BATCH_FLAGS)
	$(PY) -m tools.batch_bench --memory $(BENCH_BATCH_MEMORY) --batch-size 256 \
	  --report reports/batch/memory.md
