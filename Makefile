# The one entry point for set-up, running and checks. README and .ci/run call these targets.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: run test setup lint typecheck unit integration e2e bench bench-forward bench-security bench-land bench-quality bench-audit bench-audit-kafka bench-scale bench-rebalance clean

## run: start the whole bus locally with demo departments until Ctrl-C (DISTRICTS=1: a district bus beside it)
run: setup
	$(VENV)/bin/sharebus run --demo $(if $(DISTRICTS),--districts $(DISTRICTS))

## test: every check: lint, types, unit, integration (real Kafka), e2e
test: setup lint typecheck
	$(PY) -m pytest tests/unit -q
	$(PY) -m pytest tests/integration tests/e2e -q --durations=25

setup:
	@scripts/bootstrap.sh

lint: setup
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

e2e: setup
	$(PY) -m pytest tests/e2e -q

## bench: the benchmarks below, one after the other (not part of test)
bench: bench-forward bench-security bench-land bench-quality bench-audit bench-audit-kafka bench-rebalance

## bench-forward: throughput and latency against bare Faust and raw confluent-kafka
bench-forward: setup
	$(PY) -m bench.forward --rounds 3 --records 60000 --steady-rate 2000

## bench-security: the router and raw confluent-kafka on a SASL_SSL broker against a plaintext one
bench-security: setup
	$(PY) -m bench.security --rounds 3 --records 25000

## bench-quality: microseconds per record of the quality rules, against decoding the record (no Kafka)
bench-quality: setup
	$(PY) -m bench.quality --records 20000 --rounds 5

## bench-rebalance: repeats reaching the delivery topic per rebalance (join, leave, rejoin, SIGKILL) against stock Faust
bench-rebalance: setup
	$(PY) -m bench.rebalance --records 20000 --stock

## bench-audit: CPU microseconds per audit event of the auditor's step, before and now, and of sealing (no Kafka)
bench-audit: setup
	$(PY) -m bench.audit --events 20000 --rounds 5

## bench-audit-kafka: the auditor on a broker: backlog catch-up per second and per CPU second, lag at a steady rate
bench-audit-kafka: setup
	$(PY) -m bench.audit_kafka --records 100000 --rate 50000 --seconds 20

## bench-scale: the bus over a generated city catalogue (3,170 classes): provisioning, start, /metrics, latency
bench-scale: setup
	$(PY) -m bench.scale --scale city

## bench-land: rows/s landed by sharebus land into SQLite and PostgreSQL against a plain executemany
bench-land: setup
	$(PY) -m bench.land --rows 20000 --rounds 3

clean:
	rm -rf var build .pytest_cache .mypy_cache .ruff_cache
	find services -name '*.so' -delete
