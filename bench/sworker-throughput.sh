#!/usr/bin/env bash
# bench/sworker-throughput.sh: OPTIONS throughput with and without sworker delegation.
#
# The same stateless OPTIONS responder as bench/sipp-options.sh (ksr_request_route
# answers 200 via KSR.sl.send_reply), run in three modes from one config and one Lua
# script written to the work dir:
#   direct     no pre-routing callback (as bench/kamailio/options.cfg)
#   prerouting kemi.pre_routing_callback set to an empty Lua function (cost of the
#              callback; in kemi also of the copy of the received message that
#              KSR.sworker.task would pass on, taken when sworker is loaded)
#   prerouting-nosw  (kemi only) the same without loadmodule "sworker.so": no copy taken,
#              so prerouting minus prerouting-nosw is the cost of that copy
#   delegated  the pre-routing callback calls KSR.sworker.task("sw") then KSR.x.drop():
#              every request is answered by the async_workers group "sw"
#              (SW_WORKERS workers, default = CHILDREN)
# Kamailio 5.6.3 (Debian) ships no sworker module, so it runs direct and prerouting
# only, for scale (MODES_KAMAILIO); kemi runs all four (MODES_KEMI).
#
# Per engine and mode: start, readiness probe, warm-up (2 s at 2000/s), then
#   1. RATE/s for SECS s (default 5000/s, 10 s): ok/failed calls and the engine's CPU
#      (utime+stime of its process tree) per successful request, in µs. This is the
#      stable figure: the cost of one request on the engine's core(s).
#   2. SAT_RATE/s for SAT_SECS s (default 40000/s, 10 s; more than one engine core
#      answers): the successful requests per second actually achieved (sipp -l SAT_LIMIT
#      bounds the calls in flight). With PIN on (default on >= 2 CPUs) the engine has
#      one core and sipp the other; sipp tops out around 20-40k/s on one core, so check
#      the engine CPU column: well under 100 % means the limit is sipp's.
#
# Usage: KEMI_BIN=/tmp/kemi bench/sworker-throughput.sh
#   env: RATE=5000 SECS=10 SAT_RATE=40000 SAT_SECS=10 (0 skips phase 2) SAT_LIMIT=2000
#        SW_WORKERS=$CHILDREN ROUNDS=1 (each round runs every engine/mode; the summary
#        gives the median over the rounds)
#        MODES_KEMI="direct prerouting-nosw prerouting delegated" MODES_KAMAILIO="direct prerouting"
#        BASE_PORT=15068 SIPP_BUF=4194304
#        and bench/lib.sh's CHILDREN, PIN, ENGINES, KEEP, KAM_MEM, ...
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATE=${RATE:-5000}
SECS=${SECS:-10}
SAT_RATE=${SAT_RATE:-40000}
SAT_SECS=${SAT_SECS:-10}
SAT_LIMIT=${SAT_LIMIT:-2000}
SW_WORKERS=${SW_WORKERS:-$CHILDREN}
ROUNDS=${ROUNDS:-1}
MODES_KEMI=${MODES_KEMI:-direct prerouting-nosw prerouting delegated}
MODES_KAMAILIO=${MODES_KAMAILIO:-direct prerouting}
BASE_PORT=${BASE_PORT:-15068}
SIPP_BUF=${SIPP_BUF:-4194304}

bench_init sworker
warn_if_busy
mapfile -t engines < <(bench_engines)
SC=$(sipp_scenario options)
CLK_TCK=$(getconf CLK_TCK)

# The Lua script: the OPTIONS responder of bench/lua/options.lua plus two
# pre-routing callbacks; the config picks one.
cat >"$WORK/sworker.lua" <<'EOF'
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end

function ksr_pre_routing_pass(evname)
end

function ksr_pre_routing_delegate(evname)
	if KSR.sworker.task("sw") == 1 then
		KSR.x.drop()
	end
end
EOF

# The config (same for both engines): bench/kamailio/options.cfg plus the mode's lines.
# ("#!ifdef KEMI": kemi defines KEMI, Kamailio does not.)
cat >"$WORK/sworker.cfg.in" <<EOF
#!KAMAILIO
# bench/sworker-throughput.sh: options.cfg + MODE_* sections.
debug=2
log_stderror=yes
children=BENCH_CHILDREN
listen=udp:127.0.0.1:BENCH_PORT
disable_tcp=yes
#!ifdef KEMI
# JSON-RPC on an ephemeral port: another kemi on this machine may hold the default one
kemi.rpc_listen="127.0.0.1:0"
#!endif

mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "app_lua.so"
#!ifdef MODE_DELEGATED
async_workers_group="name=sw;workers=$SW_WORKERS"
loadmodule "sworker.so"
kemi.pre_routing_callback="ksr_pre_routing_delegate"
#!endif
#!ifdef MODE_PREROUTING
kemi.pre_routing_callback="ksr_pre_routing_pass"
#!ifdef KEMI
loadmodule "sworker.so"
#!endif
#!endif
#!ifdef MODE_PREROUTING_NOSW
kemi.pre_routing_callback="ksr_pre_routing_pass"
#!endif

modparam("app_lua", "load", "$WORK/sworker.lua")

cfgengine "lua"
EOF


declare -A res_us res_sat
rows=()
row() { printf '%-22s %5s %6s %8s %8s %7s %9s %6s %8s %8s\n' "$@"; }
row "engine/mode" round target calls ok failed "ok/s" "cpu%" "us/req" rcvdrop
# Rounds run every engine/mode once each, so machine noise spreads over all of them.
for ((round = 1; round <= ROUNDS; round++)); do
	for engine in "${engines[@]}"; do
		if [[ $engine == kemi ]]; then modes=$MODES_KEMI; else modes=$MODES_KAMAILIO; fi
		for mode in $modes; do
			port=$(engine_port "$engine" "$BASE_PORT")
			name=${engine//:/-}-$mode
			cfg=$WORK/$name.cfg
			logf=$WORK/$name-$round.log
			defs=()
			case $mode in
			direct) ;;
			prerouting) defs+=(MODE_PREROUTING=1) ;;
			prerouting-nosw) defs+=(MODE_PREROUTING_NOSW=1) ;;
			delegated) defs+=(MODE_DELEGATED=1) ;;
			*) die "unknown mode '$mode' (direct, prerouting, prerouting-nosw, delegated)" ;;
			esac
			render_cfg "$WORK/sworker.cfg.in" "$cfg" "$port" "${defs[@]}"
			start_engine "$engine" "$cfg" "$logf"
			pid=$ENGINE_PID
			wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine ($mode) did not start"
			sipp_measure "$engine" "$pid" "$port" 2000 2 2000 "$name-$round-warmup" "$SC" >/dev/null
			read -r calls ok fail meas cpu us drop < <(sipp_measure "$engine" "$pid" "$port" "$RATE" "$SECS" "$RATE" "$name-$round-fixed" "$SC")
			row "$engine/$mode" "$round" "$RATE" "$calls" "$ok" "$fail" "$meas" "$cpu" "$us" "$drop"
			res_us[$engine/$mode]+="$us "
			if ((SAT_SECS > 0)); then
				read -r calls ok fail meas cpu us drop < <(sipp_measure "$engine" "$pid" "$port" "$SAT_RATE" "$SAT_SECS" "$SAT_LIMIT" "$name-$round-sat" "$SC")
				row "$engine/$mode" "$round" "$SAT_RATE" "$calls" "$ok" "$fail" "$meas" "$cpu" "$us" "$drop"
				res_sat[$engine/$mode]+="$meas "
			fi
			((round > 1)) || rows+=("$engine/$mode")
			stop_group "$pid"
			show_log_errors "$engine/$mode" "$logf"
		done
	done
done

# median VALUES...: the median of the numbers given ("-" when none).
median() {
	printf '%s\n' "$@" | { grep -E '^[0-9.]+$' || true; } | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "Summary (median of $ROUNDS round(s)): engine CPU per request at $RATE/s; achieved ok/s at target $SAT_RATE/s"
printf '%-22s %10s %10s   %s\n' "engine/mode" "us/req" "sat ok/s" "us/req per round"
declare -A med_us med_sat
for r in "${rows[@]}"; do
	# shellcheck disable=SC2086 # word splitting of the value lists is intended
	med_us[$r]=$(median ${res_us[$r]})
	# shellcheck disable=SC2086
	med_sat[$r]=$(median ${res_sat[$r]:-})
	printf '%-22s %10s %10s   %s\n' "$r" "${med_us[$r]}" "${med_sat[$r]}" "${res_us[$r]}"
done
if [[ -n ${med_us[kemi/direct]:-} && -n ${med_us[kemi/delegated]:-} ]]; then
	awk -v d="${med_us[kemi/direct]}" -v g="${med_us[kemi/delegated]}" -v sd="${med_sat[kemi/direct]}" -v sg="${med_sat[kemi/delegated]}" \
		'BEGIN { if (d > 0) printf "kemi delegated/direct: %.2fx CPU per request", g / d
			if (sd > 0 && sg > 0) printf ", %.2fx saturated throughput", sg / sd
			print "" }'
fi
