package ksr

import "regexp"

// maxCachedRegexps bounds an Env's cache of compiled expressions: a script
// that builds expressions from message data cannot grow it without end.
const maxCachedRegexps = 256

// Regexp compiles expr (Go syntax) once per VM: scripts pass the same
// literal expressions on every message (rr's check_route_param, textops'
// search), which Kamailio compiles each time too, but a compile costs far
// more than the match. Errors are not cached.
func (e *Env) Regexp(expr string) (*regexp.Regexp, error) {
	if re, ok := e.reCache[expr]; ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	if e.reCache == nil {
		e.reCache = map[string]*regexp.Regexp{}
	}
	if len(e.reCache) >= maxCachedRegexps {
		clear(e.reCache)
	}
	e.reCache[expr] = re
	return re, nil
}
