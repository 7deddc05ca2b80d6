#!/usr/bin/env bash
# bench/reload-under-load.sh [reloads=20] [rate=5000]: kemi answers sipp
# OPTIONS at RATE/s while `kemi rpc app_lua.reload` runs RELOADS times (each
# reload alternates between two versions of the script, so every one really
# switches all VMs). Prints requests sent, answered and failed, and the
# reload latency (RPC call until every VM runs the new version). Target: 0
# failed. kemi only: KEMI_BIN must be set.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

RELOADS=${1:-20}
RATE=${2:-5000}
GAP=${GAP:-0.5}

kemi_available || die "KEMI_BIN must point at a kemi binary (go build -o /tmp/kemi ./cmd/kemi)"
bench_init reload
port=$(engine_port kemi "${BASE_PORT:-15072}")
rpcport=$(free_udp_port 15172)
cfg=$WORK/reload-kemi.cfg
cp "$BENCH_DIR/lua/options.lua" "$WORK/options.lua"
render_cfg "$BENCH_DIR/kamailio/options.cfg" "$cfg" "$port"
sed -i "s|\"$BENCH_DIR/lua/options.lua\"|\"$WORK/options.lua\"|" "$cfg"
KEMI_EXTRA_ARGS="-rpc 127.0.0.1:$rpcport" start_engine kemi "$cfg" "$WORK/kemi.log"
pid=$ENGINE_PID
wait_ready kemi "$pid" "$port" "$WORK/kemi.log" || die "kemi did not start"
rpc() { "$KEMI_BIN" rpc -s "127.0.0.1:$rpcport" "$@"; }

secs=$(awk -v n="$RELOADS" -v g="$GAP" 'BEGIN { printf "%d", n * g + 6 }')
calls=$((RATE * secs))
sc=$(sipp_scenario options)
log "sipp: $calls OPTIONS at $RATE/s; $RELOADS reloads every ${GAP}s"
(cd "$WORK" && "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$sc" -r "$RATE" -m "$calls" -t u1 -i 127.0.0.1 \
	-p "$SIPP_LOCAL_PORT" -nostdin -trace_stat -stf load.csv >/dev/null 2>&1 || true) &
sp=$!
sleep 2
lat=()
for i in $(seq 1 "$RELOADS"); do
	# alternate between two script versions so each reload changes the code
	if ((i % 2)); then sed -i 's/"OK"/"OK."/' "$WORK/options.lua"; else sed -i 's/"OK\."/"OK"/' "$WORK/options.lua"; fi
	t0=$(date +%s%N)
	v=$(rpc app_lua.reload | sed -n 's/.*"version": \([0-9]*\).*/\1/p')
	[[ -n $v ]] || die "reload $i failed"
	# wait until no VM reports another version (includes two rpc process starts)
	while rpc kemi.status | grep '"version":' | grep -qv "\"version\": $v,\?\$"; do :; done
	t1=$(date +%s%N)
	lat+=($(((t1 - t0) / 1000)))
	sleep "$GAP"
done
wait "$sp" || true
ok=$(sipp_stat_field "$WORK/load.csv" 'SuccessfulCall(C)')
fail=$(sipp_stat_field "$WORK/load.csv" 'FailedCall(C)')
printf '\nreload under load: %d reloads during %d OPTIONS at %d/s\n' "$RELOADS" "$calls" "$RATE"
printf 'answered %s, failed %s\n' "$ok" "$fail"
printf 'reload latency (RPC until all VMs switched), us: %s\n' "$(printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {printf "min %d p50 %d max %d", a[1], a[int((NR+1)/2)], a[NR]}')"
grep -c "script reloaded" "$WORK/kemi.log" | xargs printf 'reloads logged: %s\n'
