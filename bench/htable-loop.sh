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
# Usage: bench/htable-loop.sh            (ROUNDS=5 BASE_PORT=15074 env knobs)
# kemi half runs only when KEMI_BIN is an executable (`$KEMI_BIN run -f <cfg>`).
# See bench/lib.sh for CHILDREN, PIN, KEEP, ENGINES, KAM_PORT_OFFSET.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
BASE_PORT=${BASE_PORT:-15074}

bench_init htable
mapfile -t engines < <(bench_engines)

declare -A res # res[engine,field] = median
fields=(inc_ns get_ns pv_get_ns empty_loop_ns)

for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	cfg=$WORK/htable-$engine.cfg
	logf=$WORK/htable-$engine.log
	render_cfg "$BENCH_DIR/kamailio/htable.cfg" "$cfg" "$port"
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"

	sc=$(sipp_scenario message)
	log "$engine: sending $ROUNDS MESSAGE (one at a time)"
	rc=0
	(cd "$WORK" && timeout $((ROUNDS * 70 + 10)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$sc" \
		-m "$ROUNDS" -l 1 -r 10 -t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -nostdin \
		-timeout $((ROUNDS * 70))s -trace_stat -stf "$WORK/htable-$engine-sipp.csv" -fd 1 \
		>"$WORK/htable-$engine-sipp.out" 2>&1) || rc=$?
	ok=$(sipp_stat_field "$WORK/htable-$engine-sipp.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
	[[ $rc -eq 0 && $ok -eq $ROUNDS ]] || log "$engine: sipp rc=$rc, $ok/$ROUNDS answered 200"
	sleep 0.5
	stop_group "$pid"

	if grep -q 'htbench error' "$logf"; then
		grep -m 3 'htbench error' "$logf" >&2 || true
		die "$engine: sht_inc/sht_get sanity check failed"
	fi
	n=$(grep -c 'htbench inc_ns=' "$logf" || true)
	((n > 0)) || { tail -n 20 "$logf" >&2; die "$engine: no 'htbench' line in $logf"; }
	counted=$(grep -o 'counted=[0-9-]*' "$logf" | sort -u | tr '\n' ' ')
	log "$engine: $n rounds logged; increments counted per loop: $counted"
	for f in "${fields[@]}"; do
		res[$engine,$f]=$(grep -o "htbench .*" "$logf" | grep -o "$f=[0-9.]*" | cut -d= -f2 |
			sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
	done
	log "$engine: rounds (sht_inc ns): $(grep -o 'inc_ns=[0-9.]*' "$logf" | cut -d= -f2 | tr '\n' ' ')"
done

echo
echo "htable loop: 100000 iterations per round, median of $ROUNDS rounds (os.clock, ns per iteration)"
printf '%-19s %10s %14s %11s %10s\n' engine "sht_inc ns" "sht_get ns" "\$sht ns" "empty ns"
for engine in "${engines[@]}"; do
	printf '%-19s %10s %14s %11s %10s\n' "$engine" "${res[$engine,inc_ns]}" \
		"${res[$engine,get_ns]}" "${res[$engine,pv_get_ns]}" "${res[$engine,empty_loop_ns]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
nratio=0
for engine in "${engines[@]}"; do
	[[ $engine == kamailio* && -n ${res[kemi,inc_ns]:-} ]] || continue
	printf '%-19s %10s %14s %11s %10s\n' "kemi/$engine" \
		"$(ratio "${res[kemi,inc_ns]}" "${res[$engine,inc_ns]}")" \
		"$(ratio "${res[kemi,get_ns]}" "${res[$engine,get_ns]}")" \
		"$(ratio "${res[kemi,pv_get_ns]}" "${res[$engine,pv_get_ns]}")" \
		"$(ratio "${res[kemi,empty_loop_ns]}" "${res[$engine,empty_loop_ns]}")"
	nratio=$((nratio + 1))
done
if ((nratio == 0)); then
	echo "(ratio kemi/Kamailio: needs both engines; set KEMI_BIN)"
fi
