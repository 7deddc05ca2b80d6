#!/bin/sh
# tests/mariadb.sh starts MariaDB when it is not running and prepares it as
# `kamdbctl create` does for Kamailio's example configuration: database
# "kamailio" (the server's character set), user kamailio/kamailiorw with all
# privileges on it and kamailioro/kamailioro with SELECT, both on localhost.
# The kamailio user may also create and drop databases named kemitest_*,
# which tests use to keep their tables apart (go test runs packages in
# parallel). Tables are created by the tests (`kemi db init`, or kamdbctl's
# SQL files for the Kamailio side). Needs root; idempotent.
set -eu
sock=/run/mysqld/mysqld.sock
if ! command -v mariadbd >/dev/null 2>&1; then
	echo "tests/mariadb.sh: mariadb-server is not installed" >&2
	exit 1
fi
if ! mariadb-admin --socket="$sock" ping >/dev/null 2>&1; then
	mkdir -p /run/mysqld
	chown mysql:mysql /run/mysqld
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
	fi
	# mysqld_safe restarts the server if it dies; detached from this shell.
	(setsid mysqld_safe --user=mysql >/dev/null 2>&1 &)
	i=0
	until mariadb-admin --socket="$sock" ping >/dev/null 2>&1; do
		i=$((i + 1))
		if [ "$i" -gt 120 ]; then
			echo "tests/mariadb.sh: MariaDB did not start in 60 s (see /var/log/mysql or journal)" >&2
			exit 1
		fi
		sleep 0.5
	done
fi
mariadb --socket="$sock" -uroot <<'SQL'
CREATE DATABASE IF NOT EXISTS kamailio;
CREATE USER IF NOT EXISTS 'kamailio'@'localhost' IDENTIFIED BY 'kamailiorw';
GRANT ALL PRIVILEGES ON kamailio.* TO 'kamailio'@'localhost';
GRANT ALL PRIVILEGES ON `kemitest\_%`.* TO 'kamailio'@'localhost';
CREATE USER IF NOT EXISTS 'kamailioro'@'localhost' IDENTIFIED BY 'kamailioro';
GRANT SELECT ON kamailio.* TO 'kamailioro'@'localhost';
FLUSH PRIVILEGES;
SQL
