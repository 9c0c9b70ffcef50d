# ringstore: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= $(HOME)/.local/share/ringstore
PORT ?= 7000
S3_PORT ?= 9000
CONSOLE_PORT ?= 9001
DATANODES ?= 3

.PHONY: run test lint protos bench clean venv image up down

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ringstore cluster up --data-dir $(DATA_DIR) --port $(PORT) --s3-port $(S3_PORT) --console-port $(CONSOLE_PORT) --datanodes $(DATANODES)

test: $(STAMP)
	$(PY) -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. protos/ringstore/v1/*.proto

bench: $(STAMP)
	$(PY) -m bench.run --door all --rounds 2 --record

clean:
	rm -rf $(VENV) build *.egg-info

# docker compose: six datanodes in three zones, a metanode and a gateway on 127.0.0.1:7000.
COMPOSE ?= docker compose -f deploy/docker-compose.yml

image: $(STAMP)
	bash deploy/build-image.sh

up: image
	$(COMPOSE) up --detach --wait
	@echo "root credentials; paste these into your shell:"
	@$(COMPOSE) exec -T metanode cat /data/credentials
	@echo "ready: export RINGSTORE_ENDPOINT=$$($(COMPOSE) port gateway 7000)"
	@echo "       S3 endpoint http://$$($(COMPOSE) port gateway 9000)"
	@echo "       console http://$$($(COMPOSE) port gateway 9001)/ (sign in with the root key above)"

down:
	$(COMPOSE) down
