#!/usr/bin/env bash
# bench/mqueue-loop.sh: cost of KSR.mqueue.mq_add + mq_fetch from Lua, per engine.
#
# Starts each engine on bench/kamailio/mqueue.cfg (queue name=bench;size=1000, routing
# in bench/lua/mqueue.lua), sends ROUNDS MESSAGE requests one after the other with
# sipp (bench/sipp/message.xml). For every MESSAGE the Lua route times with os.clock():
#   - an empty 100k loop, 100k KSR.is_MESSAGE(), 100k KSR.pv.get("$ci"),
#   - 100k KSR.mqueue.mq_add("bench", "k", "v") + KSR.mqueue.mq_fetch("bench") pairs,
# logs "mqbench ns_per_pair=.. is_message_ns=.. pv_get_ns=.. empty_loop_ns=.." and
# replies 200. This script takes the median of the rounds per engine and prints
#   engine | ns/pair | is_MESSAGE ns/call | pv.get ns/call | empty ns/iter
# plus the kemi/Kamailio ratio of each column (when both ran).
#
# Usage: bench/mqueue-loop.sh            (ROUNDS=5 BASE_PORT=15064 env knobs; QUICK=1: ROUNDS=1)
# kemi half runs only when KEMI_BIN is an executable (`$KEMI_BIN run -f <cfg>`).
# See bench/lib.sh for CHILDREN, PIN, KEEP, ENGINES, KAM_PORT_OFFSET.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
[[ ${QUICK:-0} != 1 ]] || ROUNDS=1 # QUICK=1: one round
BASE_PORT=${BASE_PORT:-15064}

bench_init mqueue
lua_loop_bench mqueue mqbench mq_add/mq_fetch left "queue size after each loop" \
	"ns_per_pair:ns/pair" "is_message_ns:is_MESSAGE ns" "pv_get_ns:pv.get ns" "empty_loop_ns:empty ns"
