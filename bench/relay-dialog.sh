#!/usr/bin/env bash
# bench/relay-dialog.sh: INVITE dialogs through the stateful proxy of bench/relay.sh.
#
# sipp bench/sipp/relay-inv-uac.xml -> proxy (bench/kamailio/relay.cfg + bench/lua/relay.lua)
# -> sipp bench/sipp/relay-inv-uas.xml: INVITE / 100 / 180 / 200 (Record-Route kept), ACK and
# BYE routed by the proxy's Record-Route (loose_route + t_relay), 200 for the BYE. Per engine
# it runs CALLS calls at RATE calls/s (HOLD ms between ACK and BYE) and prints the successful
# and failed calls of both sipps and the engine's CPU per call (µs). A call counts as
# successful only when every message went through the proxy both ways.
#
# Usage: KEMI_BIN=/tmp/kemi bench/relay-dialog.sh
#   env: CALLS=2000 RATE=200 HOLD=100 BASE_PORT=15072 UAS_PORT=15092
#        and bench/lib.sh's CHILDREN, PIN, ENGINES, KEEP, ...
set -euo pipefail

KAM_SHM=${KAM_SHM:-1024}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CALLS=${CALLS:-2000}
RATE=${RATE:-200}
HOLD=${HOLD:-100}
BASE_PORT=${BASE_PORT:-15072}
UAS_PORT=${UAS_PORT:-15092}

bench_init relay-dialog
warn_if_busy
mapfile -t engines < <(bench_engines)
UAC=$(sipp_scenario relay-inv-uac)
UAS=$(sipp_scenario relay-inv-uas)
CLK_TCK=$(getconf CLK_TCK)

printf '%-16s %6s %8s %8s %8s %8s %9s\n' engine calls uac-ok uac-fail uas-ok uas-fail "us/call"
status=0
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	name=${engine//:/-}
	cfg=$WORK/dialog-$name.cfg
	logf=$WORK/dialog-$name.log
	render_cfg "$BENCH_DIR/kamailio/relay.cfg" "$cfg" "$port"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"
	(cd "$WORK" && exec setsid "${PIN_SIPP[@]}" "$SIPP" -sf "$UAS" -t u1 -i 127.0.0.1 -p "$UAS_PORT" \
		-nostdin -trace_stat -stf "$WORK/$name-uas.csv" -fd 1 </dev/null >"$WORK/$name-uas.out" 2>&1) &
	uas_pid=$!
	BG_PIDS+=("$uas_pid")
	sleep 0.5
	cpu0=$(cpu_ticks "$pid")
	rc=0
	(cd "$WORK" && timeout -k 5 $((CALLS / RATE + 60)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$UAC" \
		-key uas_port "$UAS_PORT" -t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -r "$RATE" -m "$CALLS" -d "$HOLD" \
		-nostdin -trace_stat -stf "$WORK/$name-uac.csv" -fd 1 -trace_err >"$WORK/$name-uac.out" 2>&1) || rc=$?
	cpu1=$(cpu_ticks "$pid")
	sleep 1 # the last BYE's 200 reaches the UAS's stats
	stop_group "$uas_pid"
	uok=$(sipp_stat_field "$WORK/$name-uac.csv" 'SuccessfulCall(C)' || echo 0)
	ufail=$(sipp_stat_field "$WORK/$name-uac.csv" 'FailedCall(C)' || echo 0)
	sok=$(sipp_stat_field "$WORK/$name-uas.csv" 'SuccessfulCall(C)' || echo 0)
	sfail=$(sipp_stat_field "$WORK/$name-uas.csv" 'FailedCall(C)' || echo 0)
	us=$(awk -v c="$((cpu1 - cpu0))" -v hz="$CLK_TCK" -v ok="$uok" 'BEGIN { if (ok > 0) printf "%.1f", 1e6 * c / hz / ok; else print "-" }')
	printf '%-16s %6s %8s %8s %8s %8s %9s\n' "$engine" "$CALLS" "$uok" "$ufail" "$sok" "$sfail" "$us"
	[[ $rc == 0 && $uok == "$CALLS" ]] || status=1
	stop_group "$pid"
	show_log_errors "$engine" "$logf" 'level=ERROR|ERROR:|CRITICAL|panic'
done
exit "$status"
