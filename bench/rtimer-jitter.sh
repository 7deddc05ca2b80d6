#!/usr/bin/env bash
# bench/rtimer-jitter.sh: rtimer tick regularity, idle or under SIP load.
#
# Each engine runs bench/kamailio/rtimer.cfg: rtimer timers
#   name=t100;mode=1;interval=100000u   -> Lua rt_t100: KSR.info("jit t100 <$TV(Sn)>")
#   name=t10;mode=1;interval=10000u     -> Lua rt_t10:  KSR.info("jit t10 <$TV(Sn)>")
# (bench/lua/rtimer.lua; ksr_request_route answers OPTIONS with 200).
# After the engine answers, the script measures for SECONDS; with LOAD > 0 sipp sends
# OPTIONS at LOAD/s to the same instance meanwhile (bench/sipp/options.xml). Only
# log lines written during that window are analysed (first SKIP ticks dropped), by
# bench/cmd/jitter, which prints per engine and timer:
#   ticks, nominal, mean interval, p50/p99/max |interval - nominal|,
#   drift = last - first - (ticks-1)*nominal (ms and % of elapsed), gaps >1.5x nominal
#   (and the ticks they swallowed).
# Kamailio 5.6's rtimer loops sleep(interval)-then-run, so its drift grows with the run
# time of each tick; a drift-free scheduler shows ~0 drift (skipped ticks appear as gaps,
# and skipdrift% is the drift counting each gap as the whole periods it spans). A tick
# more than half a period late and not skipped also looks like a gap to the analyser, so
# for kemi the script also prints the ticks it really skipped in the window, read from its
# rtimer_ticks/rtimer_skipped counters (kemi.status over JSON-RPC on BASE_PORT+9).
#
# Usage: bench/rtimer-jitter.sh [SECONDS=60] [LOAD=0|rate/s]
#   env: BASE_PORT=15062 SKIP=2 KEMI_RPC_PORT=BASE_PORT+9 and bench/lib.sh's CHILDREN,
#   PIN, ENGINES, KEEP, ... (kemi: GOGC and other Go variables pass through)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECS=${1:-60}
LOAD=${2:-0}
BASE_PORT=${BASE_PORT:-15062}
SKIP=${SKIP:-2}
# kemi's JSON-RPC listener goes to BASE_PORT+9 rather than its default port (no clash
# with another instance); the script reads kemi's own rtimer counters there.
KEMI_RPC=127.0.0.1:${KEMI_RPC_PORT:-$((BASE_PORT + 9))}
KEMI_EXTRA_ARGS="${KEMI_EXTRA_ARGS:-} -rpc $KEMI_RPC"

# kemi_counters: "ticks skipped" from kemi.status (summed over its timers), or "- -".
kemi_counters() {
	local st t s
	st=$("$KEMI_BIN" rpc -s "$KEMI_RPC" kemi.status 2>/dev/null) || { echo "- -"; return; }
	t=$(grep -o '"rtimer_ticks": *[0-9]*' <<<"$st" | grep -o '[0-9]*$')
	s=$(grep -o '"rtimer_skipped": *[0-9]*' <<<"$st" | grep -o '[0-9]*$')
	echo "${t:--} ${s:--}"
}
[[ $SECS =~ ^[0-9]+$ && $SECS -gt 0 ]] || die "SECONDS must be a positive integer"
[[ $LOAD =~ ^[0-9]+$ ]] || die "LOAD must be 0 or a rate (calls/s)"

bench_init rtimer
warn_if_busy
build_tools
mapfile -t engines < <(bench_engines)
SC=$(sipp_scenario options)
CLK_TCK=$(getconf CLK_TCK)

declare -A table loadinfo
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	cfg=$WORK/rtimer-$engine.cfg
	logf=$WORK/rtimer-$engine.log
	render_cfg "$BENCH_DIR/kamailio/rtimer.cfg" "$cfg" "$port"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"

	from=$(($(wc -l <"$logf") + 1))
	cpu0=$(cpu_ticks "$pid")
	[[ $engine == kemi ]] && read -r kt0 ks0 < <(kemi_counters)
	sipp_pid=""
	csv=$WORK/rtimer-$engine-load.csv
	if ((LOAD > 0)); then
		log "$engine: ${SECS}s window under OPTIONS load $LOAD/s"
		(cd "$WORK" && exec setsid "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$SC" -t u1 -i 127.0.0.1 \
			-p "$SIPP_LOCAL_PORT" -r "$LOAD" -rp 1000 -l "$LOAD" -buff_size 4194304 -nostdin \
			-timeout "${SECS}s" -trace_stat -stf "$csv" -fd 1 \
			</dev/null >"$WORK/rtimer-$engine-load.out" 2>&1) &
		sipp_pid=$!
		BG_PIDS+=("$sipp_pid")
	else
		log "$engine: ${SECS}s window, idle"
	fi
	sleep "$SECS"
	to=$(wc -l <"$logf")
	cpu1=$(cpu_ticks "$pid")
	[[ $engine == kemi ]] && read -r kt1 ks1 < <(kemi_counters)
	if [[ -n $sipp_pid ]]; then
		for ((i = 0; i < 100; i++)); do
			kill -0 "$sipp_pid" 2>/dev/null || break
			sleep 0.1
		done
		stop_group "$sipp_pid"
		ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
		fail=$(sipp_stat_field "$csv" 'FailedCall(C)' 2>/dev/null || echo 0)
		el=$(sipp_stat_elapsed "$csv" 2>/dev/null || echo 0)
		loadinfo[$engine]=$(awk -v ok="$ok" -v f="$fail" -v el="$el" -v r="$LOAD" \
			'BEGIN { printf "target %d/s: %d ok (%.0f/s), %d failed", r, ok, (el > 0) ? ok / el : 0, f }')
	fi
	loadinfo[$engine]="${loadinfo[$engine]:-idle}; engine CPU $(awk -v c="$((cpu1 - cpu0))" -v hz="$CLK_TCK" -v s="$SECS" 'BEGIN { printf "%.0f%%", 100 * c / hz / s }') of one core"
	if [[ $engine == kemi && $ks1 != - && $ks0 != - ]]; then
		# ground truth for kemi's gaps: the ticks it skipped in the window, by its own count
		loadinfo[$engine]+="; rtimer counters: $((kt1 - kt0)) ticks run, $((ks1 - ks0)) skipped"
	fi
	stop_group "$pid"
	sed -n "${from},${to}p" "$logf" >"$WORK/rtimer-$engine-window.log"
	table[$engine]=$("$WORK/bin/jitter" -noheader -label "$engine" -skip "$SKIP" -tags t100,t10 \
		"$WORK/rtimer-$engine-window.log")
	show_log_errors "$engine" "$logf"
done

echo
echo "rtimer jitter: ${SECS}s window, load: $( ((LOAD > 0)) && echo "OPTIONS $LOAD/s" || echo none), first $SKIP ticks skipped"
"$WORK/bin/jitter" -tags t100 </dev/null | sed -n 1p
for engine in "${engines[@]}"; do
	printf '%s\n' "${table[$engine]}"
done
for engine in "${engines[@]}"; do
	printf '%-14s %s\n' "$engine" "${loadinfo[$engine]}"
done
kemi_available || echo "(kemi not run: set KEMI_BIN)"
