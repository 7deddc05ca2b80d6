#!/usr/bin/env bash
# bench/async-capacity.sh: memory per suspended request and resume-delay spread of
# KSR.async.route.
#
# Each engine runs bench/kamailio/async.cfg (tm, tmx, async workers=2, tm timers >
# 99 s) with bench/lua/async.lua: a MESSAGE is suspended with
# KSR.async.route("ksr_resume", <X-Delay header, default 1>) + KSR.x.exit(), and
# ksr_resume replies KSR.tm.t_reply(200, "OK"). sipp sends bench/sipp/async.xml
# (MESSAGE with "X-Delay: <s>", expects 200), UDP retransmissions off (-nr), so every
# request is exactly one transaction.
#
# Phase 1, capacity: N requests at RATE/s with X-Delay HOLD (default N/RATE + 15 s, at
# most 99), so that all N are suspended at the same time. Memory of the engine's
# process tree is sampled before (idle), once sipp has sent all N (+SETTLE s), and
# after all were answered:
#   PSS sum (/proc/<pid>/smaps_rollup; counts Kamailio's shared memory once) and
#   RSS sum (/proc/<pid>/status VmRSS; counts shm pages once per process).
#   bytes/request = (held - idle) / answered requests.
# Phase 2, resume delay: N2 requests at RATE2/s with X-Delay DELAY (1 s); per-call
# response times from sipp -trace_rtt (-rtt_freq 1, ms resolution), printed as the
# distribution of (rtt - DELAY*1000) ms. Requests unanswered LATE_SECS after their
# nominal delay count as failed (sipp recv timeout).
#
# MODE selects the suspension (header X-Mode, same Lua for both engines):
#   route  KSR.async.route (default; Kamailio: the 1 s ring of the async timer processes)
#   ms     KSR.async.ms_route(d * 1000) (Kamailio: ms_timer=1 + async_workers=2, rendered
#          with BENCH_MS; HOLD capped to 29 s, the ms_route maximum)
#   sleep  KSR.async.sleep, with lua/async-sleep.lua (BENCH_SLEEP) (kemi only: Kamailio's
#          KEMI has no sleep; Kamailio is skipped)
#
# Usage: bench/async-capacity.sh [N=50000]
#   env: MODE=route RATE=5000 HOLD=auto SETTLE=2 DELAY=1 N2=N RATE2=RATE LATE_SECS=10
#        PHASES="1 2" BASE_PORT=15066 KAM_SHM=1024 and bench/lib.sh's CHILDREN, PIN,
#        ENGINES, KEEP, ...
set -euo pipefail

KAM_SHM=${KAM_SHM:-1024} # before lib.sh, whose default is 256

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N=${1:-50000}
RATE=${RATE:-5000}
SETTLE=${SETTLE:-2}
DELAY=${DELAY:-1}
N2=${N2:-$N}
RATE2=${RATE2:-$RATE}
LATE_SECS=${LATE_SECS:-10}
PHASES=${PHASES:-1 2}
BASE_PORT=${BASE_PORT:-15066}
SIPP_BUF=${SIPP_BUF:-4194304}
MODE=${MODE:-route}
HOLD=${HOLD:-$(((N + RATE - 1) / RATE + 15))}
case $MODE in
route | sleep) max_hold=99 ;;
ms) max_hold=29 ;;
*) die "MODE must be route, ms or sleep" ;;
esac
((HOLD <= max_hold)) || {
	log "HOLD=$HOLD capped to $max_hold s (the $MODE maximum); raise RATE or lower N"
	HOLD=$max_hold
}
((DELAY >= 1 && DELAY <= max_hold)) || die "DELAY must be 1..$max_hold s"
cfg_defs=()
[[ $MODE != ms ]] || cfg_defs=(BENCH_MS=1)
[[ $MODE != sleep ]] || cfg_defs=(BENCH_SLEEP=1)

bench_init async
warn_if_busy
build_tools
mapfile -t engines < <(bench_engines)
if [[ $MODE == sleep ]]; then
	mapfile -t engines < <(printf '%s\n' "${engines[@]}" | grep -x kemi || true)
	log "MODE=sleep: KSR.async.sleep exists in kemi only; Kamailio skipped"
	((${#engines[@]} > 0)) || die "MODE=sleep needs KEMI_BIN"
fi
SC=$(sipp_scenario async)

# sipp_async PORT COUNT RATE DELAY_S RECV_TIMEOUT_S CSV OUT [extra sipp args...]:
# runs sipp in the background (own process group); sets SIPP_PID.
SIPP_PID=""
sipp_async() {
	local port=$1 count=$2 rate=$3 delay=$4 rto=$5 csv=$6 out=$7
	shift 7
	(cd "$WORK" && exec setsid "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$SC" -t u1 -i 127.0.0.1 \
		-p "$SIPP_LOCAL_PORT" -r "$rate" -rp 1000 -l "$count" -m "$count" -nr -key delay "$delay" -key mode "$MODE" \
		-recv_timeout $((rto * 1000)) -timeout $((count / rate + rto + 60))s -buff_size "$SIPP_BUF" \
		-nostdin -trace_stat -stf "$csv" -fd 1 "$@" </dev/null >"$out" 2>&1) &
	SIPP_PID=$!
	BG_PIDS+=("$SIPP_PID")
}

# wait_pid PID LIMIT_S: waits for a background process to end (kills it after LIMIT_S).
wait_pid() {
	local pid=$1 deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
	stop_group "$pid"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

declare -A cap delay_row late
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	cfg=$WORK/async-$engine.cfg
	logf=$WORK/async-$engine.log
	render_cfg "$BENCH_DIR/kamailio/async.cfg" "$cfg" "$port" "${cfg_defs[@]}"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"
	sleep 1

	if [[ " $PHASES " == *" 1 "* ]]; then
		read -r rss0 pss0 np0 < <(mem_kb "$pid")
		log "$engine: phase 1: $N requests at $RATE/s, held $HOLD s; idle PSS $(mb "$pss0") MB over $np0 processes"
		csv=$WORK/async-$engine-hold.csv
		drop0=$(udp_port_drops "$port")
		t0=$SECONDS
		sipp_async "$port" "$N" "$RATE" "$HOLD" $((HOLD + LATE_SECS)) "$csv" "$WORK/async-$engine-hold.out"
		sp=$SIPP_PID
		created=0
		peak=$pss0
		while kill -0 "$sp" 2>/dev/null; do
			sleep 0.5
			read -r _ p _ < <(mem_kb "$pid")
			((p > peak)) && peak=$p
			created=$(sipp_stat_field "$csv" TotalCallCreated 2>/dev/null || echo 0)
			((created >= N)) && break
			((SECONDS - t0 > HOLD + 30)) && break
		done
		sent_secs=$((SECONDS - t0))
		sleep "$SETTLE"
		read -r rss1 pss1 np1 < <(mem_kb "$pid")
		if ((pss1 > peak)); then peak=$pss1; fi
		held_ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
		((sent_secs + SETTLE < HOLD)) || log "WARNING: sending took ${sent_secs}s, close to HOLD=${HOLD}s: some requests may have resumed before the sample"
		((held_ok == 0)) || log "WARNING: $held_ok requests already answered at the 'held' sample"
		log "$engine: all $created sent after ~${sent_secs}s; held PSS $(mb "$pss1") MB (RSS sum $(mb "$rss1") MB, $np1 processes); waiting for the resumes"
		wait_pid "$sp" $((HOLD + LATE_SECS + 60))
		ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
		fail=$(sipp_stat_field "$csv" 'FailedCall(C)' 2>/dev/null || echo 0)
		drop1=$(udp_port_drops "$port")
		sleep 1
		read -r _ pss2 _ < <(mem_kb "$pid")
		if ((pss2 > peak)); then peak=$pss2; fi
		cap[$engine]=$(awk -v n="$N" -v ok="$ok" -v f="$fail" -v p0="$pss0" -v p1="$pss1" -v r0="$rss0" -v r1="$rss1" \
			-v pk="$peak" -v p2="$pss2" -v d="$((drop1 - drop0))" -v e="$engine" 'BEGIN {
				den = (ok > 0) ? ok : n
				printf "%-16s %7d %7d %6d %8.1f %8.1f %9.0f %9.0f %8.1f %8.1f %7d\n", e, n, ok, f,
					p0 / 1024, p1 / 1024, (p1 - p0) * 1024 / den, (r1 - r0) * 1024 / den, pk / 1024, p2 / 1024, d }')
		log "$engine: phase 1 done: $ok answered, $fail failed"
	fi

	if [[ " $PHASES " == *" 2 "* ]]; then
		log "$engine: phase 2: $N2 requests at $RATE2/s, X-Delay $DELAY s"
		csv=$WORK/async-$engine-delay.csv
		sipp_async "$port" "$N2" "$RATE2" "$DELAY" $((DELAY + LATE_SECS)) "$csv" "$WORK/async-$engine-delay.out" \
			-trace_rtt -rtt_freq 1
		sp=$SIPP_PID
		wait_pid "$sp" $((N2 / RATE2 + DELAY + LATE_SECS + 90))
		ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
		fail=$(sipp_stat_field "$csv" 'FailedCall(C)' 2>/dev/null || echo 0)
		rtt=$(find "$WORK" -maxdepth 1 -name "async_${sp}_rtt.csv" -print -quit)
		[[ -n $rtt ]] || rtt=$(find "$WORK" -maxdepth 1 -name 'async_*_rtt.csv' -newer "$csv" -print -quit)
		slow="?"
		if [[ -n $rtt ]]; then
			mv "$rtt" "$WORK/async-$engine-rtt.csv"
			delay_row[$engine]=$("$WORK/bin/pct" -noheader -label "$engine" -sep ';' -col 2 \
				-sub $((DELAY * 1000)) "$WORK/async-$engine-rtt.csv")
			slow=$(awk -F';' -v lim=$((DELAY * 1000 + 2000)) 'NR > 1 && $2 + 0 > lim { n++ } END { print n + 0 }' \
				"$WORK/async-$engine-rtt.csv")
		else
			delay_row[$engine]="$engine (no sipp rtt file)"
		fi
		late[$engine]="$engine: $ok answered ($slow of them more than 2 s late), $fail failed (no 200 within $((DELAY + LATE_SECS)) s)"
		log "${late[$engine]}"
	fi

	stop_group "$pid"
	show_log_errors "$engine" "$logf"
done

echo
if [[ " $PHASES " == *" 1 "* ]]; then
	echo "async capacity ($MODE): $N MESSAGE suspended together (X-Delay $HOLD s, sent at $RATE/s); memory of the engine's process tree"
	printf '%-16s %7s %7s %6s %8s %8s %9s %9s %8s %8s %7s\n' engine sent ok failed "idle MB" "held MB" \
		"B/req" "B/req" "peak MB" "after MB" drop@eng
	printf '%-16s %7s %7s %6s %8s %8s %9s %9s %8s %8s %7s\n' "" "" "" "" "(PSS)" "(PSS)" "(PSS)" "(RSSsum)" \
		"(PSS)" "(PSS)" ""
	for engine in "${engines[@]}"; do printf '%s\n' "${cap[$engine]}"; done
	echo
fi
if [[ " $PHASES " == *" 2 "* ]]; then
	echo "async resume delay ($MODE): $N2 MESSAGE at $RATE2/s, X-Delay $DELAY s; sipp response time - $((DELAY * 1000)) ms (ms)"
	"$WORK/bin/pct" -label x </dev/null | sed -n 1p
	for engine in "${engines[@]}"; do printf '%s\n' "${delay_row[$engine]}"; done
	for engine in "${engines[@]}"; do printf '%s\n' "${late[$engine]}"; done
fi
kemi_available || echo "(kemi not run: set KEMI_BIN)"
