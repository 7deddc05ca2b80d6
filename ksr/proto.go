package ksr

// ProtoNum is Kamailio's PROTO_* number of a transport name as kemi's
// listeners spell it (enum sip_protos: udp 1, tcp 2, tls 3, sctp 4, ws 5,
// wss 6), 0 (PROTO_NONE) for any other.
func ProtoNum(proto string) int {
	switch proto {
	case "udp":
		return 1
	case "tcp":
		return 2
	case "tls":
		return 3
	case "sctp":
		return 4
	case "ws":
		return 5
	case "wss":
		return 6
	}
	return 0
}
