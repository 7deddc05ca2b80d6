// Package config reads the subset of kamailio.cfg that kemi runs: the
// preprocessor, global parameters, loadmodule, modparam and cfgengine. It is
// the syntax layer only. Parse turns a file into an ordered list of
// statements, each with its file:line; which modules and parameters exist
// and what values mean is for the engine to decide. The engine reports its
// own errors with Errorf on a statement's Pos so that they print like
// syntax errors: "<message>, at kemi.cfg:12".
//
// # Syntax
//
// The rules follow Kamailio 5.6's cfg.lex and cfg.y, so a kamailio.cfg
// pasted as is gives the same statements:
//
//   - Comments: # and // to the end of the line, /* */ over several lines
//     (nested, as in Kamailio). A backslash at the end of a line joins it to
//     the next one.
//   - Statements: name=value (the name may be dotted, as in
//     kemi.pre_routing_callback), loadmodule "x.so", modparam("mod",
//     "param", "string" or integer), cfgengine "lua" (or cfgengine("lua")),
//     mpath="dir" (also mpath "dir"; a Global). A statement ends with an
//     optional ";" or the end of its line; modparam may span lines.
//   - Values: integers (decimal, 0x hex, 0 octal, binary with a trailing b,
//     a leading -), yes/true/on/enable and no/false/off/disable as 1 and 0,
//     strings in double quotes (escapes \n \r \t \a \" \\ \xHH \ooo; adjacent
//     double-quoted strings are joined) or single quotes (verbatim), bare
//     words, and socket specs such as udp:127.0.0.1:5060, tcp:[::1]:5060 or
//     udp:eth0:5060. After a listen socket, the rest of the line
//     (advertise 1.2.3.4:5060, name "s1") is kept in Stmt.Extra.
//   - Native route blocks (request_route, route[...], route(...),
//     reply_route, onreply_route, failure_route, branch_route, event_route,
//     onsend_route) are rejected with an error wrapping ErrNativeRoute:
//     routing lives in the Lua script.
//
// # Preprocessor
//
// Directives start a line with "#!" or "!!": define (def), trydef
// (trydefine), redefine (redef), undef, ifdef, ifndef, else, endif (nested;
// every file must close what it opens), subst, substdef, substdefs,
// include_file and import_file (also written without the prefix). The
// header lines #!KAMAILIO, #!OPENSER, #!SER, #!ALL and #!MAXCOMPAT are
// accepted and ignored. "#!" followed by a non-letter is a comment; any
// other word after "#!" or "!!" is an error rather than Kamailio's silent
// comment, so that a misspelt #!ifdef does not go unnoticed.
//
// A define's value is the rest of its line. As in Kamailio, a defined name
// that appears later as an identifier outside strings and comments is
// replaced by its value, which is then read as config text (so a value
// may be a quoted string); a define that expands to itself is an error.
// #!subst "/regexp/replacement/flags" rules apply, in order, to every
// later string literal; #!substdef also defines the regexp text as a name
// whose value is the replacement, and #!substdefs defines it quoted.
// Options.Defines presets names, like kamailio -A.
//
// include_file "path" reads path relative to the directory of the
// including file (absolute paths as they are) through Options.ReadFile;
// import_file does the same but skips a missing file. Includes nest up to
// 10 deep and may not form a cycle.
//
// Differences from Kamailio, all on the side of reporting an error where
// Kamailio misbehaves or is silent: an unbalanced #!else or #!endif is an
// error (Kamailio warns); a trailing # comment is allowed after #!ifdef,
// #!else and #!endif; a # comment in a define value ends with the value
// rather than swallowing the rest of the line where the define is used;
// include_file does not also try the path relative to the working
// directory; $ in a #!subst replacement is literal (no pseudo-variables);
// configuration framework variables with a description (tm.x = 1 descr
// "...") and flag declarations are not supported.
//
// # Concurrency
//
// Parse and ParseFile keep no state between calls and may run
// concurrently. Options.ReadFile is called only from the calling
// goroutine. A returned *Config belongs to the caller.
package config
