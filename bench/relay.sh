#!/usr/bin/env bash
# bench/relay.sh: stateful relay throughput: sipp uac -> proxy -> sipp uas, MESSAGE.
#
# The proxy is bench/kamailio/relay.cfg + bench/lua/relay.lua (tm, sl, rr, pv, app_lua):
# KSR.tm.t_relay() of every MESSAGE to its R-URI, which bench/sipp/relay-uac.xml sets
# to the UAS (127.0.0.1:UAS_PORT); the UAS is sipp with bench/sipp/relay-uas.xml
# (200 OK to every MESSAGE). Both engines run the same rendered config.
#
# Per engine: start, readiness probe (OPTIONS to the proxy), start the UAS, warm-up
# (WARM_SECS at WARM_RATE/s, default 20 s at RATE: long enough for the transactions in
# tm's 5 s wait state to reach their steady number and for the engine's memory to reach
# its working size, so that first-touch page faults are not charged to the figure), then
#   1. RATE/s for SECS s (default 2000/s, 10 s): ok/failed calls and the engine's CPU
#      (its threads' run time, cpu_ns) per relayed MESSAGE, in µs: the stable figure,
#      the cost of one relayed transaction (request in and out, reply in and out).
#   2. SAT_RATE/s for SAT_SECS s (default 10000/s, 10 s; more than one engine core
#      relays): the relayed MESSAGEs per second actually completed (sipp -l SAT_LIMIT
#      bounds the calls in flight).
# With PIN on (default on >= 2 CPUs) the engine runs on ENGINE_CPUS and both sipps on
# SIPP_CPUS: the two sipps share one core, so when the engine's CPU column is well under
# 100 % the saturation limit is sipp's, not the engine's.
#
# Usage: KEMI_BIN=/tmp/kemi bench/relay.sh
#   env: RATE=2000 SECS=10 SAT_RATE=10000 SAT_SECS=10 SAT_LIMIT=2000 BASE_PORT=15070 KAM_SHM=1024
#        WARM_RATE=RATE WARM_SECS=20
#        QUICK=1 (SECS=5 SAT_SECS=5 WARM_SECS=2)
#        ROUNDS=N (N > 1): every engine runs at once (each on its own port, one UAS) and
#          the engines take turns, N rounds of (ROUND_WARM_SECS=10 s at RATE, then SECS s
#          measured) each; no saturation phase. The summary gives each engine's median,
#          min and max, and the median of the per-round ratios kemi / Kamailio: host
#          noise that moves over minutes falls on every engine alike.
#        UAS_PORT=15090 SIPP_BUF=4194304 and bench/lib.sh's CHILDREN, PIN, ENGINES, KEEP, ...
set -euo pipefail

# Transactions live on after their final reply (tm's wait timer, 5 s): at saturation
# Kamailio's default 256 MB of shm (bench/lib.sh) runs out.
KAM_SHM=${KAM_SHM:-1024}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then # one short run of each measurement
	SECS=${SECS:-5}
	SAT_SECS=${SAT_SECS:-5}
	WARM_SECS=${WARM_SECS:-2}
fi
RATE=${RATE:-2000}
SECS=${SECS:-10}
SAT_RATE=${SAT_RATE:-10000}
SAT_SECS=${SAT_SECS:-10}
SAT_LIMIT=${SAT_LIMIT:-2000}
BASE_PORT=${BASE_PORT:-15070}
UAS_PORT=${UAS_PORT:-15090}
SIPP_BUF=${SIPP_BUF:-4194304}
WARM_RATE=${WARM_RATE:-$RATE}
WARM_SECS=${WARM_SECS:-20}
ROUNDS=${ROUNDS:-1}
ROUND_WARM_SECS=${ROUND_WARM_SECS:-10}

bench_init relay
warn_if_busy
mapfile -t engines < <(bench_engines)
UAC=$(sipp_scenario relay-uac)
UAS=$(sipp_scenario relay-uas)

# start_uas TAG: the UAS sipp in its own process group (cleaned up by bench/lib.sh); sets UAS_PID.
UAS_PID=""
start_uas() {
	(cd "$WORK" && exec setsid "${PIN_SIPP[@]}" "$SIPP" -sf "$UAS" -t u1 -i 127.0.0.1 -p "$UAS_PORT" \
		-buff_size "$SIPP_BUF" -nostdin -trace_stat -stf "$WORK/$1-uas.csv" -fd 1 \
		</dev/null >"$WORK/$1-uas.out" 2>&1) &
	UAS_PID=$!
	BG_PIDS+=("$UAS_PID")
	sleep 0.5
	kill -0 "$UAS_PID" 2>/dev/null || die "the UAS sipp did not start, see $WORK/$1-uas.out"
}

# rounds: the ROUNDS > 1 mode (see the header).
rounds() {
	local engine port name cfg logf r calls ok fail meas cpu us drop med lo hi i=0
	local -A pids ports all
	start_uas rounds # first: the engines' ports skip its port
	for engine in "${engines[@]}"; do
		port=$(free_udp_port $((BASE_PORT + i * 10)))
		i=$((i + 1))
		name=${engine//:/-}
		cfg=$WORK/relay-$name.cfg
		logf=$WORK/relay-$name.log
		render_cfg "$BENCH_DIR/kamailio/relay.cfg" "$cfg" "$port"
		start_engine_beside "$engine" "$cfg" "$logf"
		pids[$engine]=$ENGINE_PID
		ports[$engine]=$port
		wait_ready "$engine" "$ENGINE_PID" "$port" "$logf" || die "$engine did not start"
	done
	row round/engine target calls ok failed "ok/s" "cpu%" "us/req" rcvdrop
	local j n=${#engines[@]}
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((j = 0; j < n; j++)); do # rotated: the first of a round pays for what ran before it
			engine=${engines[(j + r - 1) % n]}
			name=${engine//:/-}
			sipp_measure "$engine" "${pids[$engine]}" "${ports[$engine]}" "$RATE" "$ROUND_WARM_SECS" "$RATE" \
				"r$r-$name-warmup" "$UAC" -key uas_port "$UAS_PORT" >/dev/null
			read -r calls ok fail meas cpu us drop < <(sipp_measure "$engine" "${pids[$engine]}" "${ports[$engine]}" \
				"$RATE" "$SECS" "$RATE" "r$r-$name" "$UAC" -key uas_port "$UAS_PORT")
			row "$r $engine" "$RATE" "$calls" "$ok" "$fail" "$meas" "$cpu" "$us" "$drop"
			all[$engine]+="$us "
		done
	done
	stop_group "$UAS_PID"
	for engine in "${engines[@]}"; do
		stop_group "${pids[$engine]}"
		show_log_errors "$engine" "$WORK/relay-${engine//:/-}.log" 'level=ERROR|ERROR:|CRITICAL|panic'
	done
	echo
	echo "Summary: engine CPU per relayed MESSAGE at $RATE/s, $ROUNDS rounds of $SECS s (us/req)"
	printf '%-19s %8s %8s %8s\n' engine median min max
	for engine in "${engines[@]}"; do
		# shellcheck disable=SC2086 # the figures, one word each
		read -r med lo hi < <(median_min_max ${all[$engine]})
		printf '%-19s %8s %8s %8s\n' "$engine" "$med" "$lo" "$hi"
	done
	[[ -n ${all[kemi]:-} ]] || return 0
	for engine in "${engines[@]}"; do
		[[ $engine == kamailio* ]] || continue
		local -a k m
		read -r -a k <<<"${all[kemi]}"
		read -r -a m <<<"${all[$engine]}"
		local ratios=()
		for ((r = 0; r < ROUNDS; r++)); do
			ratios+=("$(awk -v a="${k[r]}" -v b="${m[r]}" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')")
		done
		echo "kemi/$engine per round: ${ratios[*]}; median $(median_min_max "${ratios[@]}" | cut -d' ' -f1)"
	done
}

declare -A res_us res_sat
row() { printf '%-16s %6s %8s %8s %7s %9s %6s %8s %8s\n' "$@"; }
if ((ROUNDS > 1)); then
	rounds
	exit 0
fi
row engine target calls ok failed "ok/s" "cpu%" "us/req" rcvdrop
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	name=${engine//:/-}
	cfg=$WORK/relay-$name.cfg
	logf=$WORK/relay-$name.log
	render_cfg "$BENCH_DIR/kamailio/relay.cfg" "$cfg" "$port"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"
	start_uas "$name"
	sipp_measure "$engine" "$pid" "$port" "$WARM_RATE" "$WARM_SECS" "$WARM_RATE" "$name-warmup" "$UAC" -key uas_port "$UAS_PORT" >/dev/null
	read -r calls ok fail meas cpu us drop < <(sipp_measure "$engine" "$pid" "$port" "$RATE" "$SECS" "$RATE" "$name-fixed" "$UAC" -key uas_port "$UAS_PORT")
	row "$engine" "$RATE" "$calls" "$ok" "$fail" "$meas" "$cpu" "$us" "$drop"
	res_us[$engine]=$us
	read -r calls ok fail meas cpu us drop < <(sipp_measure "$engine" "$pid" "$port" "$SAT_RATE" "$SAT_SECS" "$SAT_LIMIT" "$name-sat" "$UAC" -key uas_port "$UAS_PORT")
	row "$engine" "$SAT_RATE" "$calls" "$ok" "$fail" "$meas" "$cpu" "$us" "$drop"
	res_sat[$engine]=$meas
	stop_group "$UAS_PID"
	stop_group "$pid"
	show_log_errors "$engine" "$logf" 'level=ERROR|ERROR:|CRITICAL|panic'
done

echo
echo "Summary: engine CPU per relayed MESSAGE at $RATE/s, completed MESSAGEs/s at target $SAT_RATE/s"
printf '%-19s %10s %10s\n' engine "us/req" "sat ok/s"
for engine in "${engines[@]}"; do
	printf '%-19s %10s %10s\n' "$engine" "${res_us[$engine]}" "${res_sat[$engine]}"
done
if [[ -n ${res_us[kemi]:-} ]]; then
	for engine in "${engines[@]}"; do
		[[ $engine == kamailio* ]] || continue
		awk -v k="${res_us[kemi]}" -v m="${res_us[$engine]}" -v ks="${res_sat[kemi]}" -v ms="${res_sat[$engine]}" -v e="$engine" 'BEGIN {
			printf "%-19s CPU per MESSAGE %s, saturated throughput %s\n", "kemi/" e,
				(m > 0) ? sprintf("%.2fx", k / m) : "-", (ms > 0) ? sprintf("%.2fx", ks / ms) : "-" }'
	done
else
	echo "(ratio kemi/Kamailio: needs both engines; set KEMI_BIN)"
fi
