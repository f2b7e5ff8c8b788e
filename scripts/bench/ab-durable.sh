#!/usr/bin/env bash
# Durable ingest (--sync full) of several release builds, alternated (BENCHMARKS.md).
# Usage: ab-durable.sh RATE ROUNDS BIN [BIN ...]
exec "$(dirname "$0")/ab-ingest.sh" durable "$@"
