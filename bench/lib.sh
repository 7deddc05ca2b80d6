# shellcheck shell=bash
# bench/lib.sh: helpers shared by the bench/*.sh scripts (source it, do not run it).
#
# Engines
#   kamailio  always run: `kamailio -DD -E -f <cfg> -Y <tmp run dir> -P <pidfile> ...`
#             (foreground, log to stderr), on port BASE+KAM_PORT_OFFSET.
#   kemi      run only when KEMI_BIN is an executable file: `$KEMI_BIN run -f <cfg>`, on port BASE.
#   kemi:old  the same with KEMI_BIN_OLD (another build, for before/after comparisons in one run).
#   ENGINES="kamailio kamailio:tlsf kemi" (default; commas work too) selects and orders them (add kemi:old for a
#             before/after run); "kamailio:<mm>"
#             is Kamailio with memory manager <mm> for shm and pkg (-x qm|fm|tlsf); plain
#             "kamailio" uses its default (qm), which costs 5-6x the CPU per message here.
#
# Both engines run the SAME rendered config: bench/kamailio/<name>.cfg with
#   #!define BENCH_PORT <port>
#   #!define BENCH_CHILDREN <CHILDREN>      (+ any extra NAME=VALUE given to render_cfg)
# inserted after the "#!KAMAILIO" line, and the relative app_lua load path "lua/x.lua"
# rewritten to the absolute bench/lua/x.lua. The Lua scripts are used unchanged.
#
# Common environment knobs
#   CHILDREN=2           SIP worker count (children=) for both engines
#   KAM_PORT_OFFSET=1000 Kamailio port = kemi port + offset
#   KAM_SHM=256 KAM_PKG=16   Kamailio -m / -M in MB (scripts may raise KAM_SHM)
#   KAM_MEM=             Kamailio memory manager for plain "kamailio" (-x; empty = default qm)
#   KAM_EXTRA_ARGS= KEMI_EXTRA_ARGS=   extra command-line words (split on spaces)
#   PIN=auto|0|1         CPU pinning with taskset (auto = on when >= 2 CPUs)
#   ENGINE_CPUS=0 SIPP_CPUS=1   taskset CPU lists for the engine and for sipp
#   KEEP=1               keep the temp dir (logs, rendered configs, sipp stats)
#   SIPP_LOCAL_PORT=      local UDP port of sipp (default: a free one from 18060 + random)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
KAMAILIO=${KAMAILIO:-kamailio}
SIPP=${SIPP:-sipp}
CHILDREN=${CHILDREN:-2}
KAM_PORT_OFFSET=${KAM_PORT_OFFSET:-1000}
KAM_SHM=${KAM_SHM:-256}
KAM_PKG=${KAM_PKG:-16}
PIN=${PIN:-auto}
ENGINE_CPUS=${ENGINE_CPUS:-0}
SIPP_CPUS=${SIPP_CPUS:-1}
KEEP=${KEEP:-0}
SIPP_LOCAL_PORT_FIXED=${SIPP_LOCAL_PORT:+1}
SIPP_LOCAL_PORT=${SIPP_LOCAL_PORT:-18060}

WORK=""
BG_PIDS=()        # process-group leaders we started (engines, background sipp)
PIN_ENGINE=()     # taskset prefix for engines (empty when not pinning)
# shellcheck disable=SC2034 # used by the scripts that source this file
PIN_SIPP=()       # taskset prefix for sipp

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# bench_init NAME: temp dir, cleanup trap, dependency checks, pinning decision.
bench_init() {
	local name=$1
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/kemi-bench-$name.XXXXXX")
	trap bench_cleanup EXIT
	trap 'log "interrupted"; exit 130' INT TERM HUP
	command -v "$SIPP" >/dev/null || die "sipp not found (apt-get install -y sip-tester)"
	command -v "$KAMAILIO" >/dev/null || die "kamailio not found (apt-get install -y kamailio kamailio-lua-modules)"
	command -v setsid >/dev/null || die "setsid not found (util-linux)"
	local ncpu
	ncpu=$(nproc)
	if [[ $PIN == 1 || ($PIN == auto && $ncpu -ge 2) ]]; then
		command -v taskset >/dev/null || die "taskset not found (util-linux); set PIN=0"
		PIN_ENGINE=(taskset -c "$ENGINE_CPUS")
		# shellcheck disable=SC2034 # used by the scripts that source this file
		PIN_SIPP=(taskset -c "$SIPP_CPUS")
		log "pinning: engine -> CPU $ENGINE_CPUS, sipp -> CPU $SIPP_CPUS (PIN=0 disables)"
	else
		log "pinning: off ($ncpu CPUs, PIN=$PIN)"
	fi
	log "work dir: $WORK"
	warn_foreign
	if [[ -z $SIPP_LOCAL_PORT_FIXED ]]; then
		SIPP_LOCAL_PORT=$(free_udp_port $((18060 + RANDOM % 500 * 2)))
	fi
}

bench_cleanup() {
	local rc=$?
	local pid
	for pid in "${BG_PIDS[@]}"; do
		stop_group "$pid"
	done
	BG_PIDS=()
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ $KEEP == 1 || $rc -ne 0 ]]; then
			log "logs kept in $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	return "$rc"
}

# stop_group PID: SIGTERM the process group led by PID, SIGKILL after 10 s.
stop_group() {
	local pid=$1 i
	kill -0 -- "-$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM -- "-$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 -- "-$pid" 2>/dev/null; then
		log "process group $pid still alive after SIGTERM, sending SIGKILL"
		kill -KILL -- "-$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${BG_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	BG_PIDS=("${keep[@]}")
}

# kemi_available: true when KEMI_BIN names an executable file.
kemi_available() { [[ -n ${KEMI_BIN:-} && -f ${KEMI_BIN:-} && -x ${KEMI_BIN:-} ]]; }

# bench_engines: prints the engines to run, one per line; explains a skipped kemi.
bench_engines() {
	local e
	local list=${ENGINES:-kamailio kamailio:tlsf kemi}
	for e in ${list//,/ }; do
		case $e in
		kamailio | kamailio:*) echo "$e" ;;
		kemi)
			if kemi_available; then
				echo kemi
			else
				log "kemi: SKIPPED (KEMI_BIN='${KEMI_BIN:-}' is unset or not an executable file; e.g. KEMI_BIN=\$PWD/kemi after 'go build -o kemi ./cmd/kemi')"
			fi
			;;
		kemi:old)
			if [[ -n ${KEMI_BIN_OLD:-} && -f $KEMI_BIN_OLD && -x $KEMI_BIN_OLD ]]; then
				echo kemi:old
			else
				log "kemi:old: SKIPPED (KEMI_BIN_OLD='${KEMI_BIN_OLD:-}' is unset or not an executable file)"
			fi
			;;
		*) die "unknown engine '$e' in ENGINES" ;;
		esac
	done
}

# engine_port ENGINE BASE: kemi listens on BASE, Kamailio on BASE+KAM_PORT_OFFSET.
engine_port() {
	case $1 in
	kemi | kemi:old) echo "$2" ;; # never both at once in the sequential scripts
	kamailio*) echo $(($2 + KAM_PORT_OFFSET)) ;;
	esac
}

# render_cfg SRC OUT PORT [NAME=VALUE...]: the config both engines run (see header).
render_cfg() {
	local src=$1 out=$2 port=$3
	shift 3
	[[ -f $src ]] || die "config $src not found"
	if udp_port_busy "$port"; then
		die "UDP port $port is already in use (see ss -ulpn); set BASE_PORT or KAM_PORT_OFFSET"
	fi
	{
		local first
		IFS= read -r first <"$src"
		if [[ $first == '#!KAMAILIO'* ]]; then
			printf '%s\n' "$first"
		fi
		printf '#!define BENCH_PORT %s\n' "$port"
		printf '#!define BENCH_CHILDREN %s\n' "$CHILDREN"
		local kv
		for kv in "$@"; do
			printf '#!define %s %s\n' "${kv%%=*}" "${kv#*=}"
		done
		if [[ $first == '#!KAMAILIO'* ]]; then
			tail -n +2 "$src"
		else
			cat "$src"
		fi
	} | sed -e "/^[[:space:]]*modparam/s|\"lua/|\"$BENCH_DIR/lua/|g" >"$out"
}

# start_engine_beside ENGINE CFG LOG: start_engine for one of several engines running
# at once (floor.sh, relay.sh's rounds): kemi without its JSON-RPC listener, whose port
# is fixed, so that two kemi can run side by side.
start_engine_beside() {
	if [[ $1 == kemi* ]]; then
		KEMI_EXTRA_ARGS="${KEMI_EXTRA_ARGS:-} -rpc -" start_engine "$@"
	else
		start_engine "$@"
	fi
}

# median_min_max V...: "median min max" of the numbers (a "-" is skipped), two
# decimals; "- - -" when there are none.
median_min_max() {
	printf '%s\n' "$@" | grep -v '^-*$' | sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "- - -"; exit }
		printf "%.2f %.2f %.2f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[1], v[NR] }'
}

# start_engine ENGINE CFG LOG: starts the engine in its own session/process group
# (so its shutdown signals never reach this script), sets ENGINE_PID.
ENGINE_PID=""
start_engine() {
	local engine=$1 cfg=$2 logf=$3
	local extra=()
	case $engine in
	kamailio | kamailio:*)
		local run mm=${KAM_MEM:-}
		[[ $engine == kamailio:* ]] && mm=${engine#kamailio:}
		[[ -n $mm ]] && extra+=(-x "$mm")
		# shellcheck disable=SC2206 # KAM_EXTRA_ARGS is split on purpose
		extra+=(${KAM_EXTRA_ARGS:-})
		run=$(mktemp -d "$WORK/run-kamailio.XXXX")
		# -DD: main process stays in the foreground (children are still forked),
		# -E: log to stderr, -Y: runtime dir (ctl/fifo sockets) in the temp dir,
		# -w: working dir; running as root needs no -u/-g.
		setsid "${PIN_ENGINE[@]}" "$KAMAILIO" -DD -E -f "$cfg" -Y "$run" -P "$run/kamailio.pid" \
			-w "$BENCH_DIR" -m "$KAM_SHM" -M "$KAM_PKG" "${extra[@]}" \
			</dev/null >"$logf" 2>&1 &
		;;
	kemi | kemi:old)
		local bin=${KEMI_BIN:-}
		[[ $engine == kemi ]] || bin=${KEMI_BIN_OLD:-}
		[[ -n $bin && -f $bin && -x $bin ]] || die "$engine: no executable (KEMI_BIN / KEMI_BIN_OLD)"
		# shellcheck disable=SC2206 # KEMI_EXTRA_ARGS is split on purpose
		extra+=(${KEMI_EXTRA_ARGS:-})
		setsid "${PIN_ENGINE[@]}" "$bin" run -f "$cfg" "${extra[@]}" \
			</dev/null >"$logf" 2>&1 &
		;;
	*) die "unknown engine $engine" ;;
	esac
	ENGINE_PID=$!
	BG_PIDS+=("$ENGINE_PID")
	log "$engine started, pid $ENGINE_PID, cfg $cfg, log $logf${extra[*]:+, extra args: ${extra[*]}}"
}

# sipp_scenario NAME: copies bench/sipp/NAME.xml into WORK (sipp writes its trace
# files next to the scenario name) and prints the copy's path.
sipp_scenario() {
	local src=$BENCH_DIR/sipp/$1.xml
	[[ -f $src ]] || die "scenario $src not found"
	cp "$src" "$WORK/$1.xml"
	echo "$WORK/$1.xml"
}

# wait_ready ENGINE PID PORT LOG [TIMEOUT_S=20] [SCENARIO=options]: polls with one-call
# OPTIONS (bench/sipp/SCENARIO.xml) until 200.
wait_ready() {
	local engine=$1 pid=$2 port=$3 logf=$4 limit=${5:-20}
	local sc deadline=$((SECONDS + limit))
	sc=$(sipp_scenario "${6:-options}")
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$engine exited during startup; last log lines:"
			tail -n 30 "$logf" >&2
			return 1
		fi
		if (cd "$WORK" && timeout 5 "$SIPP" "127.0.0.1:$port" -sf "$sc" -m 1 -t u1 -i 127.0.0.1 \
			-p "$(free_udp_port $((SIPP_LOCAL_PORT + 1)))" -nostdin -recv_timeout 500 -timeout 3s >/dev/null 2>&1); then
			log "$engine ready on udp:127.0.0.1:$port"
			return 0
		fi
		sleep 0.3
	done
	log "$engine did not answer OPTIONS on port $port within ${limit}s; last log lines:"
	tail -n 30 "$logf" >&2
	return 1
}

# build_tools: compiles bench/cmd/* (stdlib-only Go) into $WORK/bin.
build_tools() {
	command -v go >/dev/null || die "go not found (needed for bench/cmd tools)"
	mkdir -p "$WORK/bin"
	(cd "$REPO_DIR" && go build -o "$WORK/bin/" ./bench/cmd/...) || die "go build ./bench/cmd/... failed"
}

# tree_pids ROOT: ROOT and all its descendants.
tree_pids() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			want[root] = 1; changed = 1
			while (changed) {
				changed = 0
				for (i in pids) { p = pids[i]; if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1 } }
			}
			for (p in want) print p
		}'
}

# mem_kb ROOT: prints "<sum RSS kB> <sum PSS kB> <nprocs>" over ROOT's process tree.
# PSS (from smaps_rollup) splits shared pages (Kamailio shm) between processes, so
# the PSS sum is the real footprint; the RSS sum counts shm once per process.
mem_kb() {
	local p rss=0 pss=0 n=0 v
	for p in $(tree_pids "$1"); do
		[[ -r /proc/$p/status ]] || continue
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || v=""
		[[ -n $v ]] || continue
		rss=$((rss + v))
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || v=0
		pss=$((pss + ${v:-0}))
		n=$((n + 1))
	done
	echo "$rss $pss $n"
}

# sipp_stat_field CSV COLUMN: value of COLUMN in the last row of a sipp -trace_stat file.
sipp_stat_field() {
	awk -F';' -v col="$2" '
		NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
		{ last = $c }
		END { if (c == "") exit 1; print last }' "$1"
}

# sipp_stat_elapsed CSV: seconds (float) from StartTime to CurrentTime of the last row.
# Those columns look like "2026-11-26<TAB>12:15:48.059088<TAB>1795695348.059088".
sipp_stat_elapsed() {
	awk -F';' '
		NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "StartTime") s = i; if ($i == "CurrentTime") c = i }; next }
		{ split($s, a, "\t"); split($c, b, "\t"); e = b[3] - a[3] }
		END { printf "%.3f\n", e }' "$1"
}

# cpu_ticks ROOT: utime+stime (clock ticks) summed over ROOT's process tree.
cpu_ticks() {
	local p t=0 v
	for p in $(tree_pids "$1"); do
		v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# cpu_ns ROOT: run time in nanoseconds (user + system, the scheduler's own count in
# /proc/PID/task/TID/schedstat) summed over the threads of ROOT's process tree. Precise
# where utime+stime come in 10 ms ticks (2.5 % of a 8 s window at 5 us per request);
# a thread that exits inside the window takes its time with it (neither engine's
# threads or processes exit while it serves).
cpu_ns() {
	local p t=0 v
	for p in $(tree_pids "$1"); do
		v=$(cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }') || v=0
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# udp_rcvbuf_errors: the kernel's UDP RcvbufErrors counter (datagrams dropped because
# a socket receive buffer was full; system-wide).
udp_rcvbuf_errors() {
	awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1; next } print $c; exit }' /proc/net/snmp
}

# show_log_errors LABEL LOG [REGEX]: prints the first 5 lines of LOG matching
# REGEX (default ERROR|CRITICAL|panic), under "LABEL: errors in its log".
show_log_errors() {
	local re=${3:-ERROR|CRITICAL|panic}
	if grep -qE "$re" "$2"; then
		log "$1: errors in its log (first 5):"
		grep -m 5 -E "$re" "$2" >&2 || true
	fi
}

# warn_if_busy: the figures are only meaningful on an otherwise idle machine.
warn_if_busy() {
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" -v n="$(nproc)" 'BEGIN { exit !(l > 0.25 * n) }'; then
		log "WARNING: load average $load on $(nproc) CPUs: other work is running, figures will be noisy"
	fi
}

# udp_port_busy PORT: true when some socket is bound to UDP PORT (IPv4 or IPv6).
udp_port_busy() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h="$hex" 'FNR > 1 { split($2, a, ":"); if (a[length(a)] == h) found = 1 } END { exit !found }' \
		/proc/net/udp /proc/net/udp6 2>/dev/null
}

# free_udp_port START: the first UDP port >= START that nothing is bound to.
free_udp_port() {
	local p=$1
	while udp_port_busy "$p"; do p=$((p + 1)); done
	echo "$p"
}

# udp_port_drops PORT: datagrams the kernel dropped on sockets bound to UDP PORT
# (receive buffer full), from the "drops" column of /proc/net/udp{,6}.
udp_port_drops() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h="$hex" 'FNR > 1 { split($2, a, ":"); if (a[length(a)] == h) d += $NF } END { print d + 0 }' \
		/proc/net/udp /proc/net/udp6 2>/dev/null
}

# warn_foreign: lists sipp/kamailio/kemi processes that this script did not start
# (another benchmark running at the same time makes every figure meaningless).
warn_foreign() {
	local others
	others=$(ps -e -o pid=,comm= | awk '$2 == "sipp" || $2 == "kamailio" || $2 == "kemi" { printf "%s(%s) ", $2, $1 }')
	[[ -z $others ]] || log "WARNING: other SIP processes are running (another benchmark?): $others"
}

# sipp_measure ENGINE PID PORT RATE SECS LIMIT TAG SCENARIO [SIPP ARGS...]: one sipp
# run of SCENARIO against the engine; prints "calls ok failed ok/s cpu% us/req rcvdrop"
# (us/req = engine CPU per successful call; rcvdrop = kernel UDP receive-buffer drops
# during the run, system-wide; the CPU is cpu_ns's). Uses SIPP_BUF.
sipp_measure() {
	local engine=$1 pid=$2 port=$3 rate=$4 secs=$5 limit=$6 tag=$7 sc=$8
	shift 8
	local csv=$WORK/$tag.csv out=$WORK/$tag.out rc=0 cpu0 cpu1 ok fail el drop0 drop1
	kill -0 "$pid" 2>/dev/null || die "$engine (pid $pid) is gone"
	cpu0=$(cpu_ns "$pid")
	drop0=$(udp_rcvbuf_errors)
	(cd "$WORK" && timeout -k 5 $((secs * 3 + 40)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$sc" \
		"$@" -t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -r "$rate" -rp 1000 -l "$limit" -m $((rate * secs)) \
		-buff_size "$SIPP_BUF" -nostdin -timeout $((secs * 3 + 30))s \
		-trace_stat -stf "$csv" -fd 1 >"$out" 2>&1) || rc=$?
	cpu1=$(cpu_ns "$pid")
	drop1=$(udp_rcvbuf_errors)
	if [[ ! -s $csv ]]; then
		log "$engine: sipp produced no stats (rc=$rc), see $out"
		tail -n 5 "$out" >&2
		echo "0 0 0 0 0 - 0"
		return
	fi
	ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)')
	fail=$(sipp_stat_field "$csv" 'FailedCall(C)')
	el=$(sipp_stat_elapsed "$csv")
	awk -v ok="$ok" -v fail="$fail" -v el="$el" -v c="$((cpu1 - cpu0))" -v d="$((drop1 - drop0))" 'BEGIN {
		printf "%d %d %d %.0f %.0f %s %d\n", ok + fail, ok, fail, (el > 0) ? ok / el : 0,
			(el > 0) ? 100 * c / 1e9 / el : 0, (ok > 0) ? sprintf("%.2f", c / 1e3 / ok) : "-", d }'
}

# lua_loop_bench NAME TAG WHAT NOTE_KEY NOTE_TEXT FIELD:HEADER...
# The body of the Lua loop benchmarks (mqueue-loop.sh, htable-loop.sh): each engine
# runs bench/kamailio/NAME.cfg, gets ROUNDS MESSAGE requests one after the other, and
# its script logs one "TAG field=ns ..." line per round (or "TAG error ..." when its
# sanity check failed: WHAT names the calls). NOTE_KEY=value pairs the script logs are
# listed as NOTE_TEXT. Prints the median of each field per engine and the ratios
# kemi/Kamailio, in the order of the FIELD:HEADER arguments. Optional environment:
# LOOP_SCENARIO (bench/sipp/<name>.xml of a round, default message), LOOP_DEFINES
# (NAME=VALUE ... more #!defines for the cfg), LOOP_N (iterations per loop, for the title).
lua_loop_bench() {
	local name=$1 tag=$2 what=$3 note_key=$4 note_text=$5
	shift 5
	local -a fields=() headers=()
	local fh
	for fh in "$@"; do
		fields+=("${fh%%:*}")
		headers+=("${fh#*:}")
	done
	local -a engines
	mapfile -t engines < <(bench_engines)
	declare -A res # res[engine,field] = median
	local engine port cfg logf pid sc rc ok n notes f
	for engine in "${engines[@]}"; do
		port=$(engine_port "$engine" "$BASE_PORT")
		cfg=$WORK/$name-$engine.cfg
		logf=$WORK/$name-$engine.log
		# shellcheck disable=SC2086 # LOOP_DEFINES is split on purpose
		render_cfg "$BENCH_DIR/kamailio/$name.cfg" "$cfg" "$port" ${LOOP_DEFINES:-}
		start_engine "$engine" "$cfg" "$logf"
		pid=$ENGINE_PID
		wait_ready "$engine" "$pid" "$port" "$logf" || die "$engine did not start"

		sc=$(sipp_scenario "${LOOP_SCENARIO:-message}")
		log "$engine: sending $ROUNDS MESSAGE (one at a time)"
		rc=0
		(cd "$WORK" && timeout $((ROUNDS * 70 + 10)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$sc" \
			-m "$ROUNDS" -l 1 -r 10 -t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -nostdin \
			-timeout $((ROUNDS * 70))s -trace_stat -stf "$WORK/$name-$engine-sipp.csv" -fd 1 \
			>"$WORK/$name-$engine-sipp.out" 2>&1) || rc=$?
		ok=$(sipp_stat_field "$WORK/$name-$engine-sipp.csv" 'SuccessfulCall(C)' 2>/dev/null || echo 0)
		[[ $rc -eq 0 && $ok -eq $ROUNDS ]] || log "$engine: sipp rc=$rc, $ok/$ROUNDS answered 200"
		sleep 0.5
		stop_group "$pid"

		if grep -q "$tag error" "$logf"; then
			grep -m 3 "$tag error" "$logf" >&2 || true
			die "$engine: $what sanity check failed"
		fi
		n=$(grep -c "$tag ${fields[0]}=" "$logf" || true)
		((n > 0)) || { tail -n 20 "$logf" >&2; die "$engine: no '$tag' line in $logf"; }
		notes=$(grep -o "$note_key=[0-9-]*" "$logf" | sort -u | tr '\n' ' ')
		log "$engine: $n rounds logged; $note_text: $notes"
		for f in "${fields[@]}"; do
			res[$engine,$f]=$(grep -o "$tag .*" "$logf" | grep -o "$f=[0-9.]*" | cut -d= -f2 |
				sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
		done
		log "$engine: rounds (${headers[0]}): $(grep -o "${fields[0]}=[0-9.]*" "$logf" | cut -d= -f2 | tr '\n' ' ')"
	done

	echo
	echo "$name loop: ${LOOP_N:-100000} iterations per round, median of $ROUNDS rounds (os.clock, ns per iteration)"
	local fmt='%-19s %10s %14s %11s %10s\n'
	# shellcheck disable=SC2059 # the format is the table's
	printf "$fmt" engine "${headers[@]}"
	local -a row
	for engine in "${engines[@]}"; do
		row=()
		for f in "${fields[@]}"; do row+=("${res[$engine,$f]}"); done
		# shellcheck disable=SC2059
		printf "$fmt" "$engine" "${row[@]}"
	done
	local nratio=0
	for engine in "${engines[@]}"; do
		[[ $engine == kamailio* && -n ${res[kemi,${fields[0]}]:-} ]] || continue
		row=()
		for f in "${fields[@]}"; do
			row+=("$(awk -v a="${res[kemi,$f]}" -v b="${res[$engine,$f]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')")
		done
		# shellcheck disable=SC2059
		printf "$fmt" "kemi/$engine" "${row[@]}"
		nratio=$((nratio + 1))
	done
	if ((nratio == 0)); then
		echo "(ratio kemi/Kamailio: needs both engines; set KEMI_BIN)"
	fi
}

# rate_cpu_ratios RATES CPUS ENGINE...: the kemi/Kamailio ratio lines of a rate table, for each
# Kamailio engine: RATES and CPUS name associative arrays (engine -> req/s, engine -> us/req).
rate_cpu_ratios() {
	local -n rates=$1 cpus=$2
	shift 2
	local engine
	if [[ -z ${rates[kemi]:-} ]]; then
		echo "(ratio kemi/Kamailio: needs both engines; set KEMI_BIN)"
		return
	fi
	for engine in "$@"; do
		[[ $engine == kamailio* ]] || continue
		awk -v a="${rates[kemi]}" -v b="${rates[$engine]}" -v ua="${cpus[kemi]}" -v ub="${cpus[$engine]}" \
			-v e="$engine" 'BEGIN {
				printf "%-19s %9s         %7s (rate ratio; CPU/req ratio)\n", "kemi/" e,
					(b > 0) ? sprintf("%.2f", a / b) : "-", (ub + 0 > 0 && ua + 0 > 0) ? sprintf("%.2f", ua / ub) : "-" }'
	done
}
