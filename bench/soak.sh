#!/usr/bin/env bash
# bench/soak.sh [seconds=600] [rate=2000]: runs kemi under steady SIP load
# (OPTIONS and MESSAGE from two sipp instances, a 100 ms rtimer draining an
# mqueue, a Lua error every 50th MESSAGE) and reports RSS, goroutines and
# pending tasks after warm-up and at the end, to show that memory stays
# bounded (no goroutine, Lua state or queue growth). kemi only: KEMI_BIN must
# be set. Example: KEMI_BIN=/tmp/kemi bench/soak.sh 600 2000
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
source "$BENCH_DIR/lib.sh"

SECS=${1:-600}
RATE=${2:-2000}
WARMUP=${WARMUP:-20}

kemi_available || die "KEMI_BIN must point at a kemi binary (go build -o /tmp/kemi ./cmd/kemi)"
bench_init soak
port=$(engine_port kemi "${BASE_PORT:-15070}")
rpcport=$(free_udp_port 15170)
cfg=$WORK/soak-kemi.cfg
render_cfg "$BENCH_DIR/kamailio/soak.cfg" "$cfg" "$port"
KEMI_EXTRA_ARGS="-rpc 127.0.0.1:$rpcport" start_engine kemi "$cfg" "$WORK/kemi.log"
pid=$ENGINE_PID
wait_ready kemi "$pid" "$port" "$WORK/kemi.log" || die "kemi did not start"

status() { "$KEMI_BIN" rpc -s "127.0.0.1:$rpcport" kemi.status; }
sample() { # prints: rss_kb goroutines pending queue_len
	local rss st
	rss=$(mem_kb "$pid" | awk '{print $1}')
	st=$(status)
	printf '%s %s %s %s\n' "$rss" \
		"$(sed -n 's/.*"goroutines": \([0-9]*\).*/\1/p' <<<"$st")" \
		"$(sed -n 's/.*"pending_tasks": \([0-9]*\).*/\1/p' <<<"$st")" \
		"$(sed -n 's/.*"soak": \([0-9]*\).*/\1/p' <<<"$st")"
}

half=$((RATE / 2))
total=$((SECS + WARMUP))
opt=$(sipp_scenario options)
msg=$(sipp_scenario message)
log "load: $half OPTIONS/s + $half MESSAGE/s for ${total}s (warm-up ${WARMUP}s)"
(cd "$WORK" && "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$opt" -r "$half" -t u1 -i 127.0.0.1 \
	-p "$(free_udp_port 16100)" -nostdin -timeout "${total}s" -trace_stat -stf opt.csv >/dev/null 2>&1 || true) &
s1=$!
(cd "$WORK" && "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$msg" -r "$half" -t u1 -i 127.0.0.1 \
	-p "$(free_udp_port 16200)" -nostdin -timeout "${total}s" -trace_stat -stf msg.csv >/dev/null 2>&1 || true) &
s2=$!

sleep "$WARMUP"
read -r rss0 g0 p0 q0 < <(sample)
log "after warm-up: rss=${rss0}kB goroutines=$g0 pending=$p0 queue=$q0"
elapsed=0
while ((elapsed < SECS)); do
	step=$((SECS - elapsed < 60 ? SECS - elapsed : 60))
	sleep "$step"
	elapsed=$((elapsed + step))
	read -r rss g p q < <(sample)
	log "t=${elapsed}s rss=${rss}kB goroutines=$g pending=$p queue=$q"
done
read -r rss1 g1 p1 q1 < <(sample)
wait "$s1" "$s2" || true

ok_opt=$(sipp_stat_field "$WORK/opt.csv" "SuccessfulCall(C)")
ok_msg=$(sipp_stat_field "$WORK/msg.csv" "SuccessfulCall(C)")
bad_opt=$(sipp_stat_field "$WORK/opt.csv" "FailedCall(C)")
bad_msg=$(sipp_stat_field "$WORK/msg.csv" "FailedCall(C)")
errors=$(grep -c "deliberate error" "$WORK/kemi.log" || true)

printf '\nsoak: %ss at %s msg/s (kemi %s)\n' "$SECS" "$RATE" "$("$KEMI_BIN" version | head -1)"
printf '%-14s %12s %12s\n' "" "after warm-up" "end"
printf '%-14s %12s %12s\n' "RSS (kB)" "$rss0" "$rss1"
printf '%-14s %12s %12s\n' "goroutines" "$g0" "$g1"
printf '%-14s %12s %12s\n' "pending tasks" "$p0" "$p1"
printf '%-14s %12s %12s\n' "queue length" "$q0" "$q1"
printf 'requests: OPTIONS %s ok / %s failed, MESSAGE %s ok / %s failed; Lua errors logged (rate-limited): %s\n' \
	"$ok_opt" "$bad_opt" "$ok_msg" "$bad_msg" "$errors"
