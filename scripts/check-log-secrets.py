#!/usr/bin/env python3
"""Fails if any secret the test suite used appears in its servers' logs.

Usage: check-log-secrets.py DIR, where DIR is the NATTER_TEST_LOG_DIR the
suite ran with (tests/api/common.rs: log_check). It holds natter.log, the
debug log of every in-process test server, and secrets.txt, one password,
token, key or message text per line. The check refuses to pass on a log
or a list too small to mean anything.
"""
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
log = (root / "natter.log").read_text(encoding="utf-8", errors="replace")
secrets = sorted(set((root / "secrets.txt").read_text(encoding="utf-8").splitlines()))
lines = log.count("\n")
if lines < 1000 or len(secrets) < 50:
    sys.exit(f"log check: too little to check ({lines} log lines, {len(secrets)} secrets)")
found = [s for s in secrets if s and s in log]
for secret in found:
    shown = secret if len(secret) <= 40 else secret[:37] + "..."
    print(f"log check: secret in the log: {shown!r}")
print(f"log check: {len(secrets)} secrets against {lines} log lines: {len(found)} found")
sys.exit(1 if found else 0)
