#!/usr/bin/env bash
# In-memory ingest of several release builds, alternated (BENCHMARKS.md).
# Usage: ab-memory.sh RATE ROUNDS BIN [BIN ...]
exec "$(dirname "$0")/ab-ingest.sh" memory "$@"
