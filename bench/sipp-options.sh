#!/usr/bin/env bash
# bench/sipp-options.sh: maximum sustained OPTIONS rate (stateless 200 from Lua).
#
# For each engine (Kamailio; kemi when KEMI_BIN is executable) this starts the engine
# on bench/kamailio/options.cfg (+ bench/lua/options.lua), warms it up, then runs sipp
# with bench/sipp/options.xml (OPTIONS -> expect 200 within 2 s, no pause, one UDP
# socket) at increasing rates: START_RATE, +STEP_RATE, ... up to MAX_RATE, STEP_SECS
# seconds per step (-m rate*STEP_SECS calls, -l rate concurrent calls).
# A step PASSES when failed calls <= FAIL_PCT % of the calls and the measured rate
# (successful calls / sipp elapsed time, StartTime -> last stats row) >= MIN_PCT % of
# the target. A failing step is retried once (RETRIES); after the ramp stops, the gap
# between the last pass and the first fail is bisected down to RESOLUTION req/s.
# Max sustained rate = highest passing target rate.
#
# Per step it prints: target, calls, ok, failed, measured rate, % of target, engine
# CPU (% of one core, from the run time of the engine's threads, cpu_ns), kernel UDP
# receive-buffer drops during the step (RcvbufErrors), verdict. At the end: the max
# sustained rate of each engine and the ratio kemi/Kamailio.
#
# QUICK=1: one step at QUICK_RATE (10000) for QUICK_SECS (10) s per engine; prints the
# achieved rate instead of searching.
#
# CPU pinning (PIN=auto, the default, on machines with >= 2 CPUs): the engine runs on
# ENGINE_CPUS (0), sipp on SIPP_CPUS (1). On a 2-core box an unpinned sipp and engine
# fight over both cores and the scheduler's choices show up as run-to-run variance;
# pinned, the engine gets exactly one core (Kamailio's children=2 share it, Go's
# GOMAXPROCS follows the affinity mask = 1) and sipp gets the other, so the limit found
# is "one core of engine". PIN=0 gives the engine both cores (shared with sipp).
# sipp itself tops out somewhere around 20-40k calls/s on one core: when both engines
# hit the same ceiling, it is sipp's, not theirs (check the engine CPU column).
#
# Usage: bench/sipp-options.sh
#   env: START_RATE=5000 STEP_RATE=2500 MAX_RATE=100000 STEP_SECS=10 RESOLUTION=500
#        FAIL_PCT=0.1 MIN_PCT=97 RETRIES=1 QUICK=0 QUICK_RATE=10000 QUICK_SECS=10
#        BASE_PORT=15060 KAM_MAXBUF= (Kamailio -b: max UDP receive buffer, e.g. 4194304)
#        and bench/lib.sh's CHILDREN, PIN, ENGINES, KEEP, KAM_MEM, ...
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START_RATE=${START_RATE:-5000}
STEP_RATE=${STEP_RATE:-2500}
MAX_RATE=${MAX_RATE:-100000}
STEP_SECS=${STEP_SECS:-10}
RESOLUTION=${RESOLUTION:-500}
FAIL_PCT=${FAIL_PCT:-0.1}
MIN_PCT=${MIN_PCT:-97}
RETRIES=${RETRIES:-1}
QUICK=${QUICK:-0}
QUICK_RATE=${QUICK_RATE:-10000}
QUICK_SECS=${QUICK_SECS:-10}
BASE_PORT=${BASE_PORT:-15060}
SIPP_BUF=${SIPP_BUF:-4194304}
if [[ -n ${KAM_MAXBUF:-} ]]; then
	KAM_EXTRA_ARGS="${KAM_EXTRA_ARGS:-} -b $KAM_MAXBUF"
fi

bench_init options
warn_if_busy
mapfile -t engines < <(bench_engines)
SC=$(sipp_scenario options)
STEP_N=0

# run_step ENGINE PID PORT RATE SECS: one sipp run; sets STEP_PASS (0/1), STEP_RATE_OK and
# STEP_US (engine CPU microseconds per successful request),
# prints one table row.
run_step() {
	local engine=$1 pid=$2 port=$3 rate=$4 secs=$5
	local calls=$((rate * secs)) csv out tf rc=0 ok fail el meas pct failpct cpu0 cpu1 drop0 drop1 edrop0 edrop1
	local cpu scpu us verdict TIMEFORMAT='%U %S'
	STEP_N=$((STEP_N + 1))
	csv=$WORK/options-$engine-$STEP_N-r$rate.csv
	out=$WORK/options-$engine-$STEP_N-r$rate.out
	tf=$WORK/options-$engine-$STEP_N-r$rate.time
	kill -0 "$pid" 2>/dev/null || die "$engine (pid $pid) is gone"
	cpu0=$(cpu_ns "$pid")
	drop0=$(udp_rcvbuf_errors)
	edrop0=$(udp_port_drops "$port")
	{ time (cd "$WORK" && timeout -k 5 $((secs * 3 + 40)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$SC" \
		-t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -r "$rate" -rp 1000 -l "$rate" -m "$calls" \
		-buff_size "$SIPP_BUF" -nostdin -timeout $((secs * 3 + 30))s \
		-trace_stat -stf "$csv" -fd 1 >"$out" 2>&1); } 2>"$tf" || rc=$?
	cpu1=$(cpu_ns "$pid")
	drop1=$(udp_rcvbuf_errors)
	edrop1=$(udp_port_drops "$port")
	if [[ ! -s $csv ]]; then
		log "$engine: sipp produced no stats (rc=$rc), see $out"
		tail -n 5 "$out" >&2
		STEP_PASS=0
		STEP_RATE_OK=0
		STEP_US=-
		return
	fi
	ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)')
	fail=$(sipp_stat_field "$csv" 'FailedCall(C)')
	el=$(sipp_stat_elapsed "$csv")
	read -r meas pct failpct cpu scpu us < <(awk -v ok="$ok" -v fail="$fail" -v el="$el" -v r="$rate" \
		-v c="$((cpu1 - cpu0))" -v st="$(tail -n 1 "$tf")" 'BEGIN {
			m = (el > 0) ? ok / el : 0
			split(st, t, " ")
			printf "%.0f %.1f %.3f %.0f %.0f %.2f\n", m, 100 * m / r, (ok + fail > 0) ? 100 * fail / (ok + fail) : 100,
				(el > 0) ? 100 * c / 1e9 / el : 0, (el > 0) ? 100 * (t[1] + t[2]) / el : 0, (ok > 0) ? c / 1e3 / ok : 0 }')
	if awk -v fp="$failpct" -v p="$pct" -v maxf="$FAIL_PCT" -v minp="$MIN_PCT" 'BEGIN { exit !(fp <= maxf && p >= minp) }'; then
		STEP_PASS=1
		verdict=pass
	else
		STEP_PASS=0
		verdict=FAIL
	fi
	((scpu < 90)) || verdict="$verdict (sipp-bound?)"
	STEP_RATE_OK=$meas
	STEP_US=$us
	printf '%-14s %8s %8s %8s %7s %9s %6s%% %6s%% %7s %6s%% %8s %8s  %s\n' "$engine" "$rate" "$calls" "$ok" "$fail" \
		"$meas" "$pct" "$cpu" "$us" "$scpu" "$((edrop1 - edrop0))" "$((drop1 - drop0 - (edrop1 - edrop0)))" "$verdict"
}

header() {
	printf '%-14s %8s %8s %8s %7s %9s %7s %7s %7s %7s %8s %8s  %s\n' engine target calls ok failed "meas/s" "%tgt" \
		"engcpu" "us/req" "sippcpu" "drop@eng" "drop@oth" verdict
}

# try_rate ENGINE PID PORT RATE: run_step with RETRIES retries on failure.
try_rate() {
	local i
	for ((i = 0; i <= RETRIES; i++)); do
		run_step "$1" "$2" "$3" "$4" "$STEP_SECS"
		((STEP_PASS)) && return 0
	done
	return 1
}

declare -A best best_note best_us
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	cfg=$WORK/options-$engine.cfg
	logf=$WORK/options-$engine.log
	render_cfg "$BENCH_DIR/kamailio/options.cfg" "$cfg" "$port"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"

	log "$engine: warm-up 2 s at 2000/s (not counted)"
	run_step "$engine" "$pid" "$port" 2000 2 >/dev/null

	echo
	header
	if [[ $QUICK == 1 ]]; then
		run_step "$engine" "$pid" "$port" "$QUICK_RATE" "$QUICK_SECS"
		best[$engine]=$STEP_RATE_OK
		best_us[$engine]=$STEP_US
		best_note[$engine]="measured at target $QUICK_RATE/s (QUICK)"
	else
		last_pass=0
		last_us=-
		first_fail=0
		rate=$START_RATE
		while ((rate <= MAX_RATE)); do
			if try_rate "$engine" "$pid" "$port" "$rate"; then
				last_pass=$rate
				last_us=$STEP_US
				rate=$((rate + STEP_RATE))
			else
				first_fail=$rate
				break
			fi
		done
		# bisect between the last pass and the first fail
		while ((first_fail > 0 && first_fail - last_pass > RESOLUTION)); do
			mid=$(((last_pass + first_fail) / 2 / 100 * 100))
			((mid > last_pass)) || break
			if try_rate "$engine" "$pid" "$port" "$mid"; then
				last_pass=$mid
				last_us=$STEP_US
			else
				first_fail=$mid
			fi
		done
		best[$engine]=$last_pass
		best_us[$engine]=$last_us
		if ((first_fail == 0)); then
			best_note[$engine]="no failure up to MAX_RATE=$MAX_RATE"
		else
			best_note[$engine]="first failing target $first_fail/s"
		fi
	fi
	stop_group "$pid"
	show_log_errors "$engine" "$logf"
done

echo
if [[ $QUICK == 1 ]]; then
	echo "OPTIONS quick run: target $QUICK_RATE/s for $QUICK_SECS s, achieved successful req/s"
else
	echo "OPTIONS max sustained rate (failed <= $FAIL_PCT %, measured >= $MIN_PCT % of target, $STEP_SECS s steps)"
fi
for engine in "${engines[@]}"; do
	printf '%-19s %9s req/s  %7s us CPU/req   (%s)\n' "$engine" "${best[$engine]}" "${best_us[$engine]}" \
		"${best_note[$engine]}"
done
rate_cpu_ratios best best_us "${engines[@]}"
