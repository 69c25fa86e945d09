#!/bin/sh
# Headless load run: bundled nats-server + N `activity run` workers + Locust (loadtest/locustfile.py).
# Same options as `activity loadtest`; e.g.
#   loadtest/run.sh --workers 2 --partition-count 8 --duration 60 --rate 4000 --out loadtest-report
# Reports (Locust CSV/HTML, summary.txt/json) go to --out.
set -eu
exec "${PYTHON:-python}" -m processor.commands.loadtest "$@"
