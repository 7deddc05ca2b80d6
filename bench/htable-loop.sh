#!/usr/bin/env bash
# bench/htable-loop.sh: cost of KSR.htable.sht_inc / sht_get and $sht from Lua, per engine.
#
# Starts each engine on bench/kamailio/htable.cfg (table bench=>size=8;initval=0, routing
# in bench/lua/htable.lua), sends ROUNDS MESSAGE requests one after the other with
# sipp (bench/sipp/message.xml). For every MESSAGE the Lua route times with os.clock():
#   - an empty 100k loop, 100k KSR.htable.sht_inc("bench", "k"),
#   - 100k KSR.htable.sht_get("bench", "g"), 100k KSR.pv.get("$sht(bench=>g)"),
# logs "htbench inc_ns=.. get_ns=.. pv_get_ns=.. empty_loop_ns=.." and replies 200.
# This script takes the median of the rounds per engine and prints
#   engine | sht_inc ns/call | sht_get ns/call | $sht ns/call | empty ns/iter
# plus the kemi/Kamailio ratio of each column (when both ran).
#
# Usage: bench/htable-loop.sh            (ROUNDS=5 BASE_PORT=15074 env knobs; QUICK=1: ROUNDS=1)
# kemi half runs only when KEMI_BIN is an executable (`$KEMI_BIN run -f <cfg>`).
# See bench/lib.sh for CHILDREN, PIN, KEEP, ENGINES, KAM_PORT_OFFSET.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
[[ ${QUICK:-0} != 1 ]] || ROUNDS=1 # QUICK=1: one round
BASE_PORT=${BASE_PORT:-15074}

bench_init htable
lua_loop_bench htable htbench sht_inc/sht_get counted "increments counted per loop" \
	"inc_ns:sht_inc ns" "get_ns:sht_get ns" "pv_get_ns:\$sht ns" "empty_loop_ns:empty ns"
