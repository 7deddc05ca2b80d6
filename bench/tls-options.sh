#!/usr/bin/env bash
# bench/tls-options.sh: OPTIONS over TLS (stateless 200 from Lua), rate and engine CPU per
# request, Kamailio (tls module, OpenSSL) beside kemi (crypto/tls) on one config.
#
# For each engine this makes a certificate with openssl (ECDSA P-256, so both engines
# negotiate the same TLS 1.3 suite), starts the engine on bench/kamailio/tls-options.cfg
# (+ bench/lua/options.lua), warms it up, then runs bench/cmd/tlsload (Debian's sipp has
# no TLS) over CONNS TLS connections at each rate of RATES for SECS seconds. A rate
# PASSES when failed <= FAIL_PCT % and the achieved rate >= MIN_PCT % of the target.
#
# Per rate it prints: target, sent, ok, failed, achieved rate, % of target, engine CPU
# (% of one core, /proc utime+stime of the engine's process tree) and engine CPU per
# request (us). At the end: per engine, the highest passing rate and the CPU per request
# at REF_RATE, and the ratios kemi / Kamailio.
#
# QUICK=1: RATES=$QUICK_RATE (5000), SECS=$QUICK_SECS (5).
#
# Usage: bench/tls-options.sh
#   env: RATES="2000 5000 10000 15000 20000" SECS=10 CONNS=2 REF_RATE=5000 FAIL_PCT=0.1
#        MIN_PCT=97 QUICK=0 BASE_PORT=15260 and bench/lib.sh's CHILDREN, PIN, ENGINES,
#        KEEP, KEMI_BIN, ...
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RATES=${RATES:-2000 5000 10000 15000 20000}
SECS=${SECS:-10}
CONNS=${CONNS:-2}
REF_RATE=${REF_RATE:-5000}
FAIL_PCT=${FAIL_PCT:-0.1}
MIN_PCT=${MIN_PCT:-97}
QUICK=${QUICK:-0}
BASE_PORT=${BASE_PORT:-15260}
if [[ $QUICK == 1 ]]; then
	RATES=${QUICK_RATE:-5000}
	SECS=${QUICK_SECS:-5}
	REF_RATE=$RATES
fi

bench_init tls-options
warn_if_busy
command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
build_tools
mapfile -t engines < <(bench_engines)
CLK_TCK=$(getconf CLK_TCK)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -keyout "$WORK/server.key" -out "$WORK/server.pem" >/dev/null 2>&1 ||
	die "openssl could not make the certificate"
cat >"$WORK/tls.cfg" <<CFG
[server:default]
method = TLSv1.2+
certificate = $WORK/server.pem
private_key = $WORK/server.key
CFG

# run_rate ENGINE PID TLSPORT RATE: one tlsload run; prints a row, sets RUN_PASS and RUN_US.
run_rate() {
	local engine=$1 pid=$2 port=$3 rate=$4 out c0 c1 sent ok failed el meas
	out=$WORK/tls-$engine-$rate.out
	kill -0 "$pid" 2>/dev/null || die "$engine (pid $pid) is gone"
	c0=$(cpu_ticks "$pid")
	"${PIN_SIPP[@]}" "$WORK/bin/tlsload" -addr "127.0.0.1:$port" -conns "$CONNS" -rate "$rate" -secs "$SECS" \
		>"$out" 2>&1 || { log "$engine: tlsload failed:"; cat "$out" >&2; RUN_PASS=0; RUN_US=-; return; }
	c1=$(cpu_ticks "$pid")
	read -r sent ok failed el meas < <(sed -E 's/[a-z]+=//g' "$out")
	read -r pct failpct cpu us < <(awk -v ok="$ok" -v f="$failed" -v el="$el" -v r="$rate" -v c="$((c1 - c0))" \
		-v hz="$CLK_TCK" 'BEGIN { m = (el > 0) ? ok / el : 0
			printf "%.1f %.3f %.0f %.1f\n", 100 * m / r, (ok + f > 0) ? 100 * f / (ok + f) : 100,
				(el > 0) ? 100 * c / hz / el : 0, (ok > 0) ? 1e6 * c / hz / ok : 0 }')
	if awk -v fp="$failpct" -v p="$pct" -v maxf="$FAIL_PCT" -v minp="$MIN_PCT" 'BEGIN { exit !(fp <= maxf && p >= minp) }'; then
		RUN_PASS=1
	else
		RUN_PASS=0
	fi
	RUN_US=$us
	printf '%-14s %8s %8s %8s %7s %8s %6s%% %6s%% %7s  %s\n' "$engine" "$rate" "$sent" "$ok" "$failed" "$meas" \
		"$pct" "$cpu" "$us" "$([[ $RUN_PASS == 1 ]] && echo pass || echo FAIL)"
}

declare -A best ref_us
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	tport=$((port + 1))
	cfg=$WORK/tls-$engine.cfg
	logf=$WORK/tls-$engine.log
	render_cfg "$BENCH_DIR/kamailio/tls-options.cfg" "$cfg" "$port" "TLS_PORT=$tport" "TLS_CFG=\"$WORK/tls.cfg\""
	start_engine "$engine" "$cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"
	log "$engine: warm-up 2 s at 1000/s over tls (not counted)"
	"$WORK/bin/tlsload" -addr "127.0.0.1:$tport" -conns "$CONNS" -rate 1000 -secs 2 >/dev/null 2>&1 ||
		die "$engine: no TLS OPTIONS answered on port $tport (see $logf)"
	echo
	printf '%-14s %8s %8s %8s %7s %8s %7s %7s %7s  %s\n' engine target sent ok failed "meas/s" "%tgt" engcpu "us/req" verdict
	best[$engine]=0
	ref_us[$engine]=-
	for rate in $RATES; do
		run_rate "$engine" "$pid" "$tport" "$rate"
		[[ $rate == "$REF_RATE" ]] && ref_us[$engine]=$RUN_US
		if [[ $RUN_PASS == 1 ]]; then
			best[$engine]=$rate
		else
			break
		fi
	done
	stop_group "$pid"
	show_log_errors "$engine" "$logf"
done

echo
echo "OPTIONS over TLS ($CONNS connections, $SECS s per rate): highest passing rate; engine CPU per request at $REF_RATE/s"
for engine in "${engines[@]}"; do
	printf '%-19s %9s req/s  %7s us CPU/req\n' "$engine" "${best[$engine]}" "${ref_us[$engine]}"
done
rate_cpu_ratios best ref_us "${engines[@]}"
