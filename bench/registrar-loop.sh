#!/usr/bin/env bash
# bench/registrar-loop.sh: cost of KSR.auth_db.auth_check and KSR.registrar.lookup from Lua,
# per engine (the hot functions of Kamailio's example script, alone).
#
# Prepares a SQLite database with Kamailio's own schema (/usr/share/kamailio/db_sqlite,
# standard + auth_db) and one subscriber (bench / benchpw), starts each engine on
# bench/kamailio/registrar.cfg (usrloc in memory, auth_db on that database, routing in
# bench/lua/registrar.lua) and runs ROUNDS rounds of bench/sipp/registrar-loop.xml one
# after the other: REGISTER (saved), MESSAGE / 407 / MESSAGE with credentials. On that
# last MESSAGE the Lua route times with os.clock():
#   - an empty 20k loop, 20k auth_check("bench.example", "subscriber", 0) (each one a
#     nonce check, a subscriber query and the digest),
#   - 20k lookup("location") after restoring the R-URI (the restore alone is timed and
#     subtracted),
# logs "regbench auth_check_ns=.. lookup_ns=.. ru_set_ns=.. empty_loop_ns=.." and replies
# 200. This script prints the median of the rounds per engine and the kemi/Kamailio ratios.
#
# Usage: bench/registrar-loop.sh         (ROUNDS=5 BASE_PORT=15084 env knobs; QUICK=1: ROUNDS=1)
# Needs sqlite3 and kamailio-sqlite-modules. kemi half runs only when KEMI_BIN is an
# executable. See bench/lib.sh for CHILDREN, PIN, KEEP, ENGINES, KAM_PORT_OFFSET.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
[[ ${QUICK:-0} != 1 ]] || ROUNDS=1 # QUICK=1: one round
BASE_PORT=${BASE_PORT:-15084}
SQL_DIR=${SQL_DIR:-/usr/share/kamailio/db_sqlite}

bench_init registrar
command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install -y sqlite3)"
for f in standard auth_db registrar; do
	[[ -f $SQL_DIR/$f-create.sql ]] || die "$SQL_DIR/$f-create.sql not found (apt-get install -y kamailio-sqlite-modules)"
done
DB=$WORK/auth.db
rm -f "$DB"
{
	cat "$SQL_DIR/standard-create.sql" "$SQL_DIR/auth_db-create.sql" "$SQL_DIR/registrar-create.sql"
	echo "INSERT INTO subscriber (username, domain, password) VALUES ('bench', 'bench.example', 'benchpw');"
} | sqlite3 "$DB" || die "could not prepare $DB"

LOOP_SCENARIO=registrar-loop LOOP_N=20000 LOOP_DEFINES="BENCH_DBURL=\"sqlite:///$DB\"" \
	lua_loop_bench registrar regbench auth_check/lookup found "lookups that found the contact per loop" \
	"auth_check_ns:auth_check ns" "lookup_ns:lookup ns" "ru_set_ns:\$ru set ns" "empty_loop_ns:empty ns"
