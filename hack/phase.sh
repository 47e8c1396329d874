#!/usr/bin/env bash
# Runs a command and prints how long that phase took, so CI logs show where time goes.
#   hack/phase.sh NAME COMMAND...
name="$1"; shift
start=${EPOCHREALTIME/./}
"$@"; rc=$?
el=$(( (${EPOCHREALTIME/./} - start) / 100000 ))
printf '[phase] %-12s %5d.%ds  (exit %d)\n' "$name" $((el / 10)) $((el % 10)) "$rc" >&2
exit $rc
