package conformance

// knownDifferences lists the cases whose results differ between Kamailio
// 5.6 and kemi on purpose or by a known bug, with the reason; each is in
// docs/conformance.md. A case listed here that no longer differs fails the
// suite, so the list stays true.
var knownDifferences = map[string]string{}
