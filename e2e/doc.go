// Package e2e holds kemi's end-to-end tests (tests only): Kamailio's basic
// KEMI Lua example (../shared/upstream/kamailio-basic-kemi.cfg and its Lua
// script, run unchanged) driven with real SIP against Kamailio 5.6 and kemi
// in turn, on MariaDB prepared as kamdbctl does and with rtpengine as the
// media relay, comparing every reply and the database rows the two leave.
// See docs/example.md.
package e2e
