#!/usr/bin/env bash
# bench/floor.sh: kemi's CPU per OPTIONS above the floor of a Go UDP responder.
#
# Engines (all started at once, all pinned to ENGINE_CPUS, each on its own port;
# only the one being measured gets traffic):
#   floor:raw    bench/floor -mode raw: reads a datagram, parses nothing, answers
#                "SIP/2.0 200 OK" + the request's header lines (the syscall floor)
#   floor:parse  bench/floor -mode parse: sipgo's parser, then the raw answer
#   floor:kparse bench/floor -mode kparse: kemi's parser (sipnet.Parse), then the raw answer
#   floor:sipgo  bench/floor -mode sipgo: sipgo's parser, sip.NewResponseFromRequest
#   kemi         $KEMI_BIN run on bench/kamailio/options.cfg + bench/lua/options.lua
#   kemi:old     $KEMI_BIN_OLD, the same (for before/after comparisons in one run)
#   kamailio, kamailio:tlsf   Kamailio on the same config (as bench/sipp-options.sh)
# ENGINES selects them (default: the four floors, kemi, and kemi:old when
# KEMI_BIN_OLD is set). Each ROUND sends RATE OPTIONS/s for SECS s to every engine
# in turn (sipp pinned to SIPP_CPUS, bench/sipp/options.xml); the engine's CPU per
# successful request comes from its threads' run time over the run (cpu_ns). Printed: every
# round, then per engine the median, min and max of the rounds, and kemi's median
# minus each floor's median (what kemi spends above that floor).
#
# QUICK=1: ROUNDS=1, SECS=5.
#
# Usage: KEMI_BIN=/tmp/kemi bench/floor.sh
#   env: RATE=10000 SECS=10 ROUNDS=5 BASE_PORT=17060 KEMI_BIN_OLD= ENGINES=
#        and bench/lib.sh's CHILDREN, PIN, ENGINE_CPUS, SIPP_CPUS, KEEP, ...
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

QUICK=${QUICK:-0}
RATE=${RATE:-10000}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-5}
if [[ $QUICK == 1 ]]; then
	ROUNDS=1
	SECS=5
fi
BASE_PORT=${BASE_PORT:-17060}
SIPP_BUF=${SIPP_BUF:-4194304}

default_engines="floor:raw floor:parse floor:kparse floor:sipgo"
kemi_available && default_engines+=" kemi"
[[ -n ${KEMI_BIN_OLD:-} ]] && default_engines+=" kemi:old"
read -r -a engines <<<"${ENGINES:-$default_engines}"

bench_init floor
warn_if_busy
build_floor() {
	command -v go >/dev/null || die "go not found (needed for bench/floor)"
	mkdir -p "$WORK/bin"
	(cd "$REPO_DIR" && go build -o "$WORK/bin/floor" ./bench/floor) || die "go build ./bench/floor failed"
}
build_floor
SC=$(sipp_scenario options)

declare -A pids ports
i=0
for engine in "${engines[@]}"; do
	port=$(free_udp_port $((BASE_PORT + i * 10)))
	i=$((i + 1))
	logf=$WORK/floor-${engine//:/-}.log
	case $engine in
	floor:*)
		setsid "${PIN_ENGINE[@]}" "$WORK/bin/floor" -mode "${engine#floor:}" -listen "127.0.0.1:$port" \
			</dev/null >"$logf" 2>&1 &
		ENGINE_PID=$!
		BG_PIDS+=("$ENGINE_PID")
		;;
	kemi | kemi:old | kamailio | kamailio:*)
		cfg=$WORK/options-${engine//:/-}.cfg
		render_cfg "$BENCH_DIR/kamailio/options.cfg" "$cfg" "$port"
		start_engine_beside "$engine" "$cfg" "$logf"
		;;
	*) die "unknown engine '$engine' (floor:raw floor:parse floor:kparse floor:sipgo kemi kemi:old kamailio kamailio:tlsf)" ;;
	esac
	pids[$engine]=$ENGINE_PID
	ports[$engine]=$port
	wait_ready "$engine" "$ENGINE_PID" "$port" "$logf" || die "$engine did not start"
	log "$engine: warm-up 2 s at 2000/s (not counted)"
	sipp_measure "$engine" "$ENGINE_PID" "$port" 2000 2 2000 "warm-${engine//:/-}" "$SC" >/dev/null
done

declare -A us
printf '%-6s %-13s %8s %8s %7s %8s %7s %8s\n' round engine calls ok failed "ok/s" "cpu%" "us/req"
n=${#engines[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	# The engines take turns in a rotated order: the first of a round pays for
	# what ran before it (about 5 % more CPU per OPTIONS measured), so each
	# engine is first in as many rounds as the others.
	for ((j = 0; j < n; j++)); do
		engine=${engines[(j + r - 1) % n]}
		read -r calls ok fail oks cpu u drop < <(sipp_measure "$engine" "${pids[$engine]}" "${ports[$engine]}" \
			"$RATE" "$SECS" "$RATE" "r$r-${engine//:/-}" "$SC")
		: "$drop"
		printf '%-6s %-13s %8s %8s %7s %8s %7s %8s\n' "$r" "$engine" "$calls" "$ok" "$fail" "$oks" "$cpu" "$u"
		us[$engine]+="$u "
	done
done

echo
echo "CPU per OPTIONS at $RATE/s, $SECS s per round, $ROUNDS rounds (engine pinned to CPU $ENGINE_CPUS)"
printf '%-13s %8s %8s %8s\n' engine median min max
declare -A med
for engine in "${engines[@]}"; do
	# shellcheck disable=SC2086 # the figures, one word each
	read -r m lo hi < <(median_min_max ${us[$engine]})
	med[$engine]=$m
	printf '%-13s %8s %8s %8s\n' "$engine" "$m" "$lo" "$hi"
done
for k in kemi kemi:old; do
	[[ -n ${med[$k]:-} ]] || continue
	echo
	echo "$k above each floor (median minus median, us per OPTIONS):"
	for engine in "${engines[@]}"; do
		[[ $engine == floor:* ]] || continue
		awk -v a="${med[$k]}" -v b="${med[$engine]}" -v e="$engine" 'BEGIN { printf "  above %-12s %6.1f\n", e, a - b }'
	done
done
for engine in "${engines[@]}"; do
	stop_group "${pids[$engine]}"
done
