#!/usr/bin/env bash
# bench/example.sh: registrations with digest auth and call set-ups per second through
# Kamailio's basic KEMI Lua example (../shared/upstream/kamailio-basic-kemi.cfg + its Lua,
# unchanged: WITH_MYSQL, WITH_AUTH, WITH_IPAUTH, WITH_USRLOCDB, WITH_NAT, WITH_ANTIFLOOD,
# WITH_ACCDB), on MariaDB prepared as kamdbctl does and rtpengine as the media relay.
#
# Per engine (ENGINES, see lib.sh; the example runs with -A WITH_CFGLUA):
#   - database kemitest_example_bench is emptied and created from Kamailio's own SQL files
#     (/usr/share/kamailio/mysql, kamdbctl's module list), plus the acc/missed_calls columns
#     of the cfg's ACCDB_COMMENT block and the subscribers (USERS users u0001.. for the
#     registrations, caller and callee for the calls);
#   - the cfg and Lua are copied to a temp dir with a kamailio-local.cfg beside them (the
#     example's own import_file hook): listen=udp:127.0.0.1:<port>, DBURL pointing at that
#     database, and a #!subst rule pointing KEMILOAD at the copied Lua;
#   - rtpengine (userspace) serves the rtpproxy protocol on 127.0.0.1:7722 (the example's
#     rtpproxy_sock); the e2e test uses the same port, so both take the same lock file.
#   - reg: sipp bench/sipp/example-register.xml: REGISTER / 401 / REGISTER with
#     credentials / 200, users from an injection file (so auth_db reads the subscriber
#     table and usrloc saves a contact every time);
#   - call: the callee (sipp bench/sipp/relay-inv-uas.xml) registers, then sipp
#     bench/sipp/example-call.xml: INVITE / 407 / ACK / INVITE with credentials / 100 /
#     180 / 200 / ACK / (HOLD ms) / BYE / 200: auth, lookup, record-route, accounting
#     (acc rows for INVITE and BYE) and, with NAT=1, the media relay (offer, answer,
#     delete).
# The load comes from 127.0.0.1, the proxy's own address, which the example exempts from
# pike (is_myself_srcip): from any other single address pike would, as designed, ban the
# load generator after 16 requests per 2 s. With NAT=1 (default) the phones' Via, Contact
# and SDP carry a private address (VIA_HOST, 192.168.1.2), so the script sees them NATed
# (nat_uac_test 19): fix_nated_register, set_contact_alias and rtpproxy_manage run.
#
# Each workload ramps through RATES (per second, STEP_SECS each) until a step fails
# (failed calls > FAIL_PCT % or achieved < MIN_PCT % of the target; a failing step is
# retried RETRIES times, the machine may just have been busy); the result is the
# achieved rate of the last passing step and the engine CPU per operation there (us/op:
# utime+stime of the engine's process tree; the database's and the relay's CPU are
# printed beside it, they are the same servers for every engine).
# QUICK=1: one step per workload at QUICK_REG_RATE / QUICK_CALL_RATE for QUICK_SECS.
#
# Usage: KEMI_BIN=/tmp/kemi bench/example.sh
#   env: REG_RATES="250 500 1000 2000 4000" CALL_RATES="50 100 200 400 800" STEP_SECS=10
#        FAIL_PCT=0.1 MIN_PCT=95 RETRIES=1 HOLD=100 USERS=1000 NAT=1 VIA_HOST=192.168.1.2
#        QUICK=0 QUICK_REG_RATE=500 QUICK_CALL_RATE=100 QUICK_SECS=5
#        BASE_PORT=15160 UAS_PORT=15192 KEMI_UPSTREAM=(dir of the example)
#        and bench/lib.sh's CHILDREN (unused: the example says children=2), PIN,
#        ENGINES, KEEP, KAM_MEM, ...
set -euo pipefail

KAM_SHM=${KAM_SHM:-512}
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REG_RATES=${REG_RATES:-250 500 1000 2000 4000}
CALL_RATES=${CALL_RATES:-50 100 200 400 800}
STEP_SECS=${STEP_SECS:-10}
FAIL_PCT=${FAIL_PCT:-0.1}
MIN_PCT=${MIN_PCT:-95}
RETRIES=${RETRIES:-1}
HOLD=${HOLD:-100}
USERS=${USERS:-1000}
NAT=${NAT:-1}
VIA_HOST=${VIA_HOST:-192.168.1.2}
QUICK=${QUICK:-0}
QUICK_REG_RATE=${QUICK_REG_RATE:-500}
QUICK_CALL_RATE=${QUICK_CALL_RATE:-100}
QUICK_SECS=${QUICK_SECS:-5}
BASE_PORT=${BASE_PORT:-15160}
UAS_PORT=${UAS_PORT:-15192}
SIPP_BUF=${SIPP_BUF:-4194304}
DB=kemitest_example_bench
[[ $NAT == 1 ]] || VIA_HOST=127.0.0.1
if [[ $QUICK == 1 ]]; then
	REG_RATES=$QUICK_REG_RATE
	CALL_RATES=$QUICK_CALL_RATE
	STEP_SECS=$QUICK_SECS
fi

UPSTREAM=${KEMI_UPSTREAM:-}
for d in "$UPSTREAM" "$REPO_DIR/../shared/upstream" "$REPO_DIR/../../shared/upstream"; do
	if [[ -n $d && -f $d/kamailio-basic-kemi.cfg ]]; then
		UPSTREAM=$(cd "$d" && pwd)
		break
	fi
done
[[ -f $UPSTREAM/kamailio-basic-kemi.cfg ]] || die "Kamailio's example not found in ../shared/upstream (set KEMI_UPSTREAM)"
command -v rtpengine >/dev/null || die "rtpengine not found (apt-get install -y rtpengine-daemon)"
command -v mariadb >/dev/null || die "mariadb client not found (tests/run installs mariadb-server)"
command -v flock >/dev/null || die "flock not found (util-linux)"
SCHEMA=/usr/share/kamailio/mysql
[[ -f $SCHEMA/standard-create.sql ]] || die "Kamailio's MySQL schema not found in $SCHEMA (apt-get install -y kamailio-mysql-modules)"

db() { MYSQL_PWD=kamailiorw mariadb -ukamailio -B -N "$@"; }
db -e 'SELECT 1' >/dev/null 2>&1 || die "MariaDB not running or user kamailio missing: run tests/mariadb.sh as root"

bench_init example
warn_if_busy
# The e2e test (package e2e) and this script share 127.0.0.1:7722: one at a time.
exec 9>"${TMPDIR:-/tmp}/kemi-example-e2e.lock"
log "waiting for the example lock (the e2e test holds it while it runs)"
flock 9
mapfile -t engines < <(bench_engines)
CLK_TCK=$(getconf CLK_TCK)
KAM_EXTRA_ARGS="${KAM_EXTRA_ARGS:-} -A WITH_CFGLUA"
KEMI_EXTRA_ARGS="${KEMI_EXTRA_ARGS:-} -A WITH_CFGLUA -E -rpc -"

# prepare_db: database $DB as kamdbctl create makes it, plus the example's columns and users.
prepare_db() {
	local m tables
	db -e "CREATE DATABASE IF NOT EXISTS $DB"
	tables=$(db "$DB" -e "SELECT GROUP_CONCAT(CONCAT('\`', table_name, '\`')) FROM information_schema.tables WHERE table_schema='$DB'")
	[[ $tables == NULL || -z $tables ]] || db "$DB" -e "DROP TABLE $tables"
	for m in standard acc lcr domain group permissions registrar usrloc msilo alias_db uri_db speeddial \
		avpops auth_db pdt dialog dispatcher dialplan topos; do
		db "$DB" <"$SCHEMA/$m-create.sql"
	done
	sed -n '/^#!ifdef ACCDB_COMMENT/,/^#!endif/p' "$UPSTREAM/kamailio-basic-kemi.cfg" | grep -v '^#!' | db "$DB"
	{
		echo "INSERT INTO subscriber (username, domain, password) VALUES ('caller','127.0.0.1','callerpw'),('callee','127.0.0.1','calleepw');"
		awk -v n="$USERS" 'BEGIN { printf "INSERT INTO subscriber (username, domain, password) VALUES "
			for (i = 1; i <= n; i++) printf "%s('\''u%04d'\'','\''127.0.0.1'\'','\''pw%04d'\'')", (i > 1 ? "," : ""), i, i
			print ";" }'
	} | db "$DB"
}

# install_example DIR PORT: the unchanged cfg and Lua plus kamailio-local.cfg.
install_example() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	cp "$UPSTREAM/kamailio-basic-kemi.cfg" "$UPSTREAM/kamailio-basic-kemi-lua.lua" "$dir/"
	cat >"$dir/kamailio-local.cfg" <<-EOF
		listen=udp:127.0.0.1:$port
		#!define DBURL "mysql://kamailio:kamailiorw@localhost/$DB"
		#!subst "|^/usr/local/etc/kamailio/kamailio-basic-kemi-lua.lua\$|$dir/kamailio-basic-kemi-lua.lua|"
	EOF
}

RTP_PID=""
start_rtpengine() {
	local i
	for ((i = 0; i < 100; i++)); do
		udp_port_busy 7722 || break
		sleep 0.2
	done
	udp_port_busy 7722 && die "127.0.0.1:7722 stays busy (another media relay?)"
	# The relay shares sipp's CPU: the engine keeps its core to itself.
	setsid "${PIN_SIPP[@]}" rtpengine --config-file=none --table=-1 --foreground --log-stderr \
		--interface=127.0.0.1 --listen-udp=127.0.0.1:7722 --delete-delay=0 --port-min=36000 --port-max=39999 \
		--log-level="${RTP_LOG_LEVEL:-4}" </dev/null >"$WORK/rtpengine-${engine//:/-}.log" 2>&1 &
	RTP_PID=$!
	BG_PIDS+=("$RTP_PID")
	for ((i = 0; i < 100; i++)); do
		udp_port_busy 7722 && return 0
		kill -0 "$RTP_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$WORK/rtpengine-${engine//:/-}.log" >&2
	die "rtpengine did not start"
}

# one_step ENGINE PID PORT RATE SECS TAG SCENARIO [SIPP ARGS...]: prints
# "ok failed achieved/s us/op db-us/op relay-us/op".
one_step() {
	local engine=$1 pid=$2 port=$3 rate=$4 secs=$5 tag=$6 sc=$7
	shift 7
	local csv=$WORK/$tag.csv out=$WORK/$tag.out rc=0 c0 c1 d0 d1 r0 r1 ok fail el dbpid
	dbpid=$(pgrep -o -x mariadbd || pgrep -o -x mysqld || echo 1)
	kill -0 "$pid" 2>/dev/null || die "$engine (pid $pid) is gone"
	c0=$(cpu_ticks "$pid")
	d0=$(cpu_ticks "$dbpid")
	r0=$(cpu_ticks "$RTP_PID")
	(cd "$WORK" && timeout -k 5 $((secs * 3 + 60)) "${PIN_SIPP[@]}" "$SIPP" "127.0.0.1:$port" -sf "$sc" "$@" \
		-key via_host "$VIA_HOST" -t u1 -i 127.0.0.1 -p "$SIPP_LOCAL_PORT" -r "$rate" -rp 1000 \
		-l $((rate * 2 + 10)) -m $((rate * secs)) -buff_size "$SIPP_BUF" -nostdin -timeout $((secs * 3 + 50))s \
		-trace_stat -stf "$csv" -fd 1 -trace_err >"$out" 2>&1) || rc=$?
	c1=$(cpu_ticks "$pid")
	d1=$(cpu_ticks "$dbpid")
	r1=$(cpu_ticks "$RTP_PID")
	if [[ ! -s $csv ]]; then
		log "$engine: sipp produced no stats (rc=$rc), see $out"
		tail -n 5 "$out" >&2
		echo "0 0 0 - - -"
		return
	fi
	ok=$(sipp_stat_field "$csv" 'SuccessfulCall(C)')
	fail=$(sipp_stat_field "$csv" 'FailedCall(C)')
	el=$(sipp_stat_elapsed "$csv")
	awk -v ok="$ok" -v fail="$fail" -v el="$el" -v c=$((c1 - c0)) -v d=$((d1 - d0)) -v r=$((r1 - r0)) \
		-v hz="$CLK_TCK" 'function us(x) { return (ok > 0) ? sprintf("%.0f", 1e6 * x / hz / ok) : "-" }
		BEGIN { printf "%d %d %.0f %s %s %s\n", ok, fail, (el > 0) ? ok / el : 0, us(c), us(d), us(r) }'
}

# ramp ENGINE PID PORT WHAT SCENARIO [SIPP ARGS...]: steps through the rates of WHAT
# (reg or call); sets BEST (achieved/s of the last passing step) and BEST_US.
ramp() {
	local engine=$1 pid=$2 port=$3 what=$4 sc=$5
	shift 5
	local rates rate ok fail meas us dbus rus verdict try
	if [[ $what == reg ]]; then rates=$REG_RATES; else rates=$CALL_RATES; fi
	BEST=0
	BEST_US=-
	for rate in $rates; do
		for ((try = 0; try <= RETRIES; try++)); do
			read -r ok fail meas us dbus rus < <(one_step "$engine" "$pid" "$port" "$rate" "$STEP_SECS" \
				"${engine//:/-}-$what-$rate-$try" "$sc" "$@")
			if awk -v ok="$ok" -v f="$fail" -v m="$meas" -v r="$rate" -v fp="$FAIL_PCT" -v mp="$MIN_PCT" \
				'BEGIN { exit !(ok > 0 && 100 * f / (ok + f) <= fp && 100 * m / r >= mp) }'; then
				verdict=pass
			else
				verdict=FAIL
			fi
			printf '%-16s %-5s %7s %8s %7s %9s %8s %8s %9s  %s\n' "$engine" "$what" "$rate" "$ok" "$fail" "$meas" \
				"$us" "$dbus" "$rus" "$verdict"
			[[ $verdict == FAIL ]] || break
		done
		[[ $verdict == pass ]] || break
		BEST=$meas
		BEST_US=$us
	done
}

printf '%-16s %-5s %7s %8s %7s %9s %8s %8s %9s  %s\n' engine what target ok failed "ach/s" "us/op" "db-us/op" \
	"rtp-us/op" verdict
declare -A res
for engine in "${engines[@]}"; do
	port=$(engine_port "$engine" "$BASE_PORT")
	udp_port_busy "$port" && die "UDP port $port is busy; set BASE_PORT"
	dir=$WORK/${engine//:/-}
	install_example "$dir" "$port"
	prepare_db
	start_rtpengine
	logf=$WORK/${engine//:/-}.log
	start_engine "$engine" "$dir/kamailio-basic-kemi.cfg" "$logf"
	pid=$ENGINE_PID
	wait_ready "$engine" "$pid" "$port" "$logf" 30 example-keepalive || die "$engine did not start"

	inf=$WORK/users.csv
	{
		echo SEQUENTIAL
		for ((i = 1; i <= USERS; i++)); do
			printf 'u%04d;[authentication username=u%04d password=pw%04d]\n' "$i" "$i" "$i"
		done
	} >"$inf"
	ramp "$engine" "$pid" "$port" reg "$(sipp_scenario example-register)" -inf "$inf"
	res[$engine,reg]=$BEST
	res[$engine,regus]=$BEST_US

	uas=$(sipp_scenario relay-inv-uas)
	(cd "$WORK" && exec setsid "${PIN_SIPP[@]}" "$SIPP" -sf "$uas" -t u1 -i 127.0.0.1 -p "$UAS_PORT" \
		-buff_size "$SIPP_BUF" -nostdin -trace_stat -stf "$WORK/${engine//:/-}-uas.csv" -fd 1 \
		</dev/null >"$WORK/${engine//:/-}-uas.out" 2>&1) &
	uas_pid=$!
	BG_PIDS+=("$uas_pid")
	(cd "$WORK" && timeout 30 "$SIPP" "127.0.0.1:$port" -sf "$(sipp_scenario example-callee-register)" \
		-key uas_port "$UAS_PORT" -m 1 -t u1 -i 127.0.0.1 -p "$(free_udp_port $((SIPP_LOCAL_PORT + 1)))" \
		-nostdin -timeout 20s >"$WORK/callee-register.out" 2>&1) || die "$engine: the callee's registration failed (see $WORK/callee-register.out)"
	ramp "$engine" "$pid" "$port" call "$(sipp_scenario example-call)" -d "$HOLD"
	res[$engine,call]=$BEST
	res[$engine,callus]=$BEST_US
	stop_group "$uas_pid"
	stop_group "$pid"
	stop_group "$RTP_PID"
	show_log_errors "$engine" "$logf" 'level=ERROR|CRITICAL|panic'
	log "$engine: acc rows $(db "$DB" -e 'SELECT COUNT(*) FROM acc'), location rows (write-back at stop) $(db "$DB" -e 'SELECT COUNT(*) FROM location')"
done

echo
echo "Kamailio's basic KEMI example (MariaDB, rtpengine, NAT=$NAT): highest passing rate, engine CPU per op there"
fmt='%-19s %10s %10s %10s %10s\n'
# shellcheck disable=SC2059 # the format is the table's
printf "$fmt" engine "reg/s" "us/reg" "calls/s" "us/call"
for engine in "${engines[@]}"; do
	# shellcheck disable=SC2059
	printf "$fmt" "$engine" "${res[$engine,reg]}" "${res[$engine,regus]}" "${res[$engine,call]}" "${res[$engine,callus]}"
done
nratio=0
for engine in "${engines[@]}"; do
	[[ $engine == kamailio* && -n ${res[kemi,reg]:-} ]] || continue
	ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
	# shellcheck disable=SC2059
	printf "$fmt" "kemi/$engine" "$(ratio "${res[kemi,reg]}" "${res[$engine,reg]}")" \
		"$(ratio "${res[kemi,regus]}" "${res[$engine,regus]}")" \
		"$(ratio "${res[kemi,call]}" "${res[$engine,call]}")" \
		"$(ratio "${res[kemi,callus]}" "${res[$engine,callus]}")"
	nratio=$((nratio + 1))
done
if ((nratio == 0)); then
	echo "(ratio kemi/Kamailio: needs both engines; set KEMI_BIN)"
fi
