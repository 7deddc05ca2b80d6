-- conformance.lua: the side-by-side conformance cases (docs/conformance.md).
--
-- The same file runs under kemi and under Kamailio 5.6. Each request names a
-- case in its X-Case header; ksr_request_route runs the case in pcall and
-- answers 200 "Case Done" with one header per returned value:
--   X-R-N: <number of values>
--   X-R-<i>: <type(v)>:<tostring(v)>   (percent-encoded outside 0x21-0x7e)
-- and an error as the single value "error:<message without its location>".
-- X-Case: __list returns the case table itself, one value per case:
--   <name>|<method>|<profile>|<expect>
-- where profile names the request the Go side builds and expect is a
-- comma-separated list of: "fwd" (a request is forwarded to the sink),
-- "relay" (relayed to the sink, which answers 200 or, when the case name
-- holds "failure", 486), "mf" (compare the forwarded Max-Forwards too),
-- "resume" (a later reply 299 "Resumed ..." comes from an async or failure
-- route).
--
-- Values that legitimately differ per engine (ports, time) are normalised
-- here: a case returns a type or a derived boolean for them, never nothing.

local cases = {}
local order = {}

local function case(name, f, opts)
	if cases[name] then
		error("duplicate case " .. name)
	end
	opts = opts or {}
	cases[name] = {f = f, method = opts.method or "OPTIONS", profile = opts.profile or "plain", expect = opts.expect or ""}
	order[#order + 1] = name
end

local function pack(...)
	return {n = select("#", ...), ...}
end

local function enc(s)
	return (string.gsub(s, "[^!-$&-~]", function(c)
		return string.format("%%%02X", string.byte(c))
	end))
end

local function ser(v)
	return enc(type(v) .. ":" .. tostring(v))
end

local function pv(name)
	return KSR.pv.get(name)
end

-- hdrv returns a header of the request as the Go side sent it.
local function hdrv(name)
	return KSR.pv.get("$hdr(" .. name .. ")")
end

local function sink()
	return "sip:" .. hdrv("X-Sink")
end

local function sinkHost()
	local h, p = string.match(hdrv("X-Sink"), "^(.*):(%d+)$")
	return h, tonumber(p)
end

-- typeof returns the type of each of its arguments, for values that differ
-- per engine.
local function typeof(...)
	local r = pack(...)
	local out = {}
	for i = 1, r.n do
		out[i] = type(r[i])
	end
	return unpack(out, 1, r.n)
end

---------------------------------------------------------------------------
-- core: KSR.is_*, methods, flags, myself, logging
---------------------------------------------------------------------------

local methods = {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "MESSAGE", "SUBSCRIBE",
	"NOTIFY", "PUBLISH", "INFO", "UPDATE", "PRACK", "REFER", "KDMQ", "GET", "POST", "PUT", "DELETE"}

-- Every is_<METHOD> on an OPTIONS request, and each on its own method
-- (ACK gets no reply, so it is checked from an OPTIONS only).
-- (coverage_test.go reads the names: KSR.is_INVITE KSR.is_ACK KSR.is_BYE KSR.is_CANCEL
-- KSR.is_REGISTER KSR.is_OPTIONS KSR.is_MESSAGE KSR.is_SUBSCRIBE KSR.is_NOTIFY KSR.is_PUBLISH
-- KSR.is_INFO KSR.is_UPDATE KSR.is_PRACK KSR.is_REFER KSR.is_KDMQ KSR.is_GET KSR.is_POST
-- KSR.is_PUT KSR.is_DELETE)
for _, m in ipairs(methods) do
	case("core.is_" .. m .. " on OPTIONS", function() return KSR["is_" .. m]() end)
	if m ~= "ACK" and m ~= "OPTIONS" then
		case("core.is_" .. m .. " on " .. m, function() return KSR["is_" .. m](), KSR.is_OPTIONS() end, {method = m})
	end
end

case("core.is_method OPTIONS", function() return KSR.is_method("OPTIONS") end)
case("core.is_method lower case", function() return KSR.is_method("options") end)
case("core.is_method other", function() return KSR.is_method("INVITE") end)
case("core.is_method empty", function() return KSR.is_method("") end)
case("core.is_method prefix", function() return KSR.is_method("OPT") end)
case("core.is_method on MESSAGE", function() return KSR.is_method("MESSAGE"), KSR.is_method("message") end, {method = "MESSAGE"})
case("core.is_method_in O", function() return KSR.is_method_in("O") end)
case("core.is_method_in IO", function() return KSR.is_method_in("IO") end)
case("core.is_method_in lower o", function() return KSR.is_method_in("o") end)
case("core.is_method_in IR", function() return KSR.is_method_in("IR") end)
case("core.is_method_in empty", function() return KSR.is_method_in("") end)
case("core.is_method_in unknown letter", function() return KSR.is_method_in("XYZ") end)
for _, l in ipairs({"I", "A", "B", "C", "M", "R", "E", "P", "S", "N", "O", "F", "G", "U", "K", "D", "T", "V"}) do
	case("core.is_method_in " .. l .. " on MESSAGE", function() return KSR.is_method_in(l) end, {method = "MESSAGE"})
end
case("core.is_method_in E on PRACK", function() return KSR.is_method_in("E") end, {method = "PRACK"})
case("core.is_method_in F on REFER", function() return KSR.is_method_in("F") end, {method = "REFER"})
case("core.is_method_in I on INFO", function() return KSR.is_method_in("I") end, {method = "INFO"})

case("core.is_request", function() return KSR.is_request() end)
case("core.is_reply", function() return KSR.is_reply() end)
case("core.is_UDP over udp", function() return KSR.is_UDP(), KSR.is_TCP() end)
case("core.is_TCP over tcp", function() return KSR.is_UDP(), KSR.is_TCP() end, {profile = "tcp"})

case("core.setflag", function() return KSR.setflag(1), KSR.isflagset(1) end)
case("core.isflagset unset", function() return KSR.isflagset(2) end)
case("core.resetflag", function() return KSR.setflag(3), KSR.resetflag(3), KSR.isflagset(3) end)
case("core.resetflag unset", function() return KSR.resetflag(4) end)
case("core.flags do not survive the message", function() return KSR.isflagset(1), KSR.isflagset(3) end)
case("core.setflag 31", function() return KSR.setflag(31), KSR.isflagset(31) end)
case("core.setflag 0", function() return KSR.setflag(0), KSR.isflagset(0) end)
case("core.setflag 32", function() return KSR.setflag(32) end)
case("core.setflag -1", function() return KSR.setflag(-1) end)
case("core.isflagset 32", function() return KSR.isflagset(32) end)
case("core.resetflag 64", function() return KSR.resetflag(64) end)

case("core.is_myself listen address", function() return KSR.is_myself("sip:127.0.0.1") end)
case("core.is_myself listen address and port", function()
	return KSR.is_myself("sip:127.0.0.1:" .. hdrv("X-Port"))
end)
case("core.is_myself other port", function() return KSR.is_myself("sip:127.0.0.1:1") end)
case("core.is_myself_suri", function() return KSR.is_myself_suri() end)
case("statistics.update_stat and reset_stat", function()
	return KSR.statistics.update_stat("conformance_stat", 5), KSR.pv.get("$stat(conformance_stat)"),
		KSR.statistics.reset_stat("conformance_stat"), KSR.pv.get("$stat(conformance_stat)"),
		KSR.statistics.update_stat("conformance_nostat", 1)
end)
case("core.is_src_port other", function() return KSR.is_src_port(1) end)
case("core.is_dst_port other", function() return KSR.is_dst_port(1) end)
case("core.setbiflag resetbiflag", function()
	return KSR.setbiflag(3, 0), KSR.isbflagset(3), KSR.resetbiflag(3, 0), KSR.isbflagset(3)
end)

-- kx (kemix): the request's parts, as e-/w- variants; what differs per
-- engine (ports, buffers, socket names) by type only
case("kx.e and w variants", function()
	return KSR.kx.gete_fhost(), KSR.kx.gete_fuser(), KSR.kx.gete_rhost(), KSR.kx.gete_thost(),
		KSR.kx.gete_tuser(), KSR.kx.getw_fhost(), KSR.kx.getw_fuser(), KSR.kx.getw_rhost(),
		KSR.kx.getw_thost(), KSR.kx.getw_cturi()
end)
case("kx.per engine values", function()
	return typeof(KSR.kx.get_srcuri(), KSR.kx.get_msgbuf(), KSR.kx.get_msglen(), KSR.kx.get_conid(),
		KSR.kx.get_rcvaddr_sock(), KSR.kx.get_srcaddr_sock())
end)
case("core.is_myself alias", function() return KSR.is_myself("sip:conformance.invalid") end)
case("core.is_myself alias with user", function() return KSR.is_myself("sip:bob@conformance.invalid:5060") end)
case("core.is_myself other host", function() return KSR.is_myself("sip:example.org") end)
case("core.is_myself not a uri", function() return KSR.is_myself("not a uri") end)
case("core.is_myself empty", function() return KSR.is_myself("") end)
case("core.is_myself_ruri other", function() return KSR.is_myself_ruri() end)
case("core.is_myself_ruri self", function() return KSR.is_myself_ruri() end, {profile = "self"})
case("core.is_myself_furi other", function() return KSR.is_myself_furi() end)
case("core.is_myself_furi self", function() return KSR.is_myself_furi() end, {profile = "self"})
case("core.is_myself_turi other", function() return KSR.is_myself_turi() end)
case("core.is_myself_turi self", function() return KSR.is_myself_turi() end, {profile = "self"})
case("core.is_myself_srcip", function() return KSR.is_myself_srcip() end)

-- (KSR.dbg KSR.info KSR.notice KSR.warn KSR.err KSR.crit)
for _, f in ipairs({"dbg", "info", "notice", "warn", "err", "crit"}) do
	case("core." .. f, function() return KSR[f]("conformance " .. f .. "\n") end)
end
case("core.alert exists", function() return type(KSR.alert) end)
case("core.log info", function() return KSR.log("info", "conformance log\n") end)
case("core.log unknown level", function() return KSR.log("nolevel", "conformance log\n") end)
case("core.set_drop", function() return KSR.set_drop() end)

case("core.forward to $du", function()
	local ok = KSR.pv.sets("$du", sink())
	return ok, KSR.forward()
end, {expect = "fwd"})
case("core.forward_uri", function() return KSR.forward_uri(sink()) end, {expect = "fwd"})
-- The forwarded requests are compared without Max-Forwards, except here.
case("core.forward_uri Max-Forwards", function() return KSR.forward_uri(sink()) end, {expect = "fwd"})

---------------------------------------------------------------------------
-- KSR.x
---------------------------------------------------------------------------

case("x.probe", function() return KSR.x.probe() end)
case("x.exit in pcall", function()
	local ok, err = pcall(KSR.x.exit)
	return ok, type(err), string.find(tostring(err), "~~ksr~exit~~", 1, true) ~= nil
end)
case("x.drop in pcall", function()
	local ok, err = pcall(KSR.x.drop)
	return ok, type(err), string.find(tostring(err), "~~ksr~exit~~", 1, true) ~= nil
end)
case("x.modf unknown function", function() return KSR.x.modf("no_such_function_conformance") end)

---------------------------------------------------------------------------
-- KSR.pv: every pseudo-variable kemi has
---------------------------------------------------------------------------

-- Values the two engines give identically for the same request.
local samePVs = {"$ru", "$rU", "$rd", "$rp", "$rz", "$rm", "$rv", "$rs", "$rr", "$ci", "$cs",
	"$fu", "$fU", "$fd", "$fn", "$ft", "$tu", "$tU", "$td", "$tn", "$tt", "$ua", "$ct", "$cT", "$cl",
	"$rb", "$si", "$Ri", "$pr", "$proto", "$du",
	"$T_reply_code", "$T_reply_reason", "$T_reply_type", "$T(reply_type)", "$T(reply_code)", "$T(reply_reason)",
	"$hdr(User-Agent)", "$hdr(user-agent)", "$hdr(X-Multi)", "$hdr(X-Nope)", "$hdr(Content-Length)",
	"$(ru)", "$(hdr(X-Multi)[1])", "$(hdr(X-Multi)[-1])", "$(hdr(X-Multi)[0])", "$(hdr(X-Multi)[*])",
	"$(hdr(X-Multi)[5])",
	"$var(conformance_never_set)", "$shv(conformance_never_set)", "$avp(conformance_never_set)",
	"$rtimer_worker", "$mq_size(cq)", "$mqk(cq)", "$mqv(cq)"}
for _, name in ipairs(samePVs) do
	case("pv.get " .. name, function() return KSR.pv.get(name) end)
end
for _, name in ipairs({"$ru", "$rU", "$fn", "$tt", "$rb", "$cT", "$ct", "$ua"}) do
	case("pv.get " .. name .. " on INVITE with body", function() return KSR.pv.get(name) end,
		{method = "INVITE", profile = "body"})
end
case("pv.get $ru self", function() return pv("$ru") == "sip:bob@127.0.0.1:" .. hdrv("X-Port") end, {profile = "self"})
case("pv.get $hdr(f) compact form", function() return pv("$hdr(f)") == pv("$hdr(From)"), pv("$hdr(i)") end)
case("pv.get $hdr(Via)", function()
	local v = pv("$hdr(Via)")
	return type(v), string.sub(v, 1, 22)
end)
case("pv.get $Rp over tcp", function() return type(pv("$Rp")), type(pv("$sp")) end, {profile = "tcp"})
case("core.is_myself_srcip over tcp", function() return KSR.is_myself_srcip() end, {profile = "tcp"})
case("pv.get $rp self", function() return type(pv("$rp")), tostring(pv("$rp")) == hdrv("X-Port") end, {profile = "self"})
case("pv.get $cl with body", function() return pv("$cl") end, {method = "MESSAGE", profile = "body"})
case("pv.get $sp", function() return type(pv("$sp")), pv("$sp") == tonumber(hdrv("X-Src-Port")) end)
case("pv.get $Rp", function() return type(pv("$Rp")), pv("$Rp") == tonumber(hdrv("X-Port")) end)
case("pv.get $pr over tcp", function() return pv("$pr"), pv("$proto") end, {profile = "tcp"})
case("pv.get $mb", function()
	local mb = pv("$mb")
	return type(mb), string.sub(mb, 1, 43), string.find(mb, "\r\nUser-Agent: conformance-ua/1.0\r\n", 1, true) ~= nil,
		string.sub(mb, -4) == "\r\n\r\n"
end)
case("pv.get $ml", function() return type(pv("$ml")), pv("$ml") == #pv("$mb") end)
case("pv.get $Ts", function()
	local v = pv("$Ts")
	return type(v), math.abs(v - os.time()) <= 5
end)
for _, n in ipairs({"s", "sn"}) do
	case("pv.get $TV(" .. n .. ")", function()
		local v = pv("$TV(" .. n .. ")")
		return type(v), math.abs(v - os.time()) <= 5
	end)
end
for _, n in ipairs({"u", "un"}) do
	case("pv.get $TV(" .. n .. ")", function()
		local v = pv("$TV(" .. n .. ")")
		return type(v), v >= 0 and v < 1000000
	end)
end
case("pv.get $TV(Sn)", function()
	local v = pv("$TV(Sn)")
	return type(v), string.match(v, "^%d+%.%d%d%d%d%d%d$") ~= nil
end)
case("pv.get $TV(Sm)", function()
	local v = pv("$TV(Sm)")
	return type(v), type(v) == "string" and string.match(v, "^%d+%.%d%d%d$") ~= nil
end)
case("pv.get $TV(x) unknown", function() return pv("$TV(x)") end)
case("pv.get $TV(Fn)", function()
	local v = pv("$TV(Fn)")
	return type(v), type(v) == "string" and string.match(v, "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+$") ~= nil
end)
for _, n in ipairs({"$TF", "$Tf"}) do
	case("pv.get " .. n, function()
		local v = pv(n)
		return type(v), string.match(v, "^%a%a%a %a%a%a [ %d]%d %d%d:%d%d:%d%d %d%d%d%d$") ~= nil
	end)
end
case("pv.get unknown class", function() return pv("$conformance_nope") end)
case("pv.get without dollar", function() return pv("ru") end)
case("pv.get empty name", function() return pv("") end)
case("pv.get unterminated", function() return pv("$var(x") end)

-- the getters' defaults on a null value, on a string and on a number
case("pv.gete null", function() return KSR.pv.gete("$avp(conformance_none)") end)
case("pv.getw null", function() return KSR.pv.getw("$avp(conformance_none)") end)
case("pv.getvs null", function() return KSR.pv.getvs("$avp(conformance_none)", "dflt") end)
case("pv.getvn null", function() return KSR.pv.getvn("$avp(conformance_none)", 42) end)
case("pv.geti null", function() return KSR.pv.geti("$avp(conformance_none)") end)
case("pv.is_null null", function() return KSR.pv.is_null("$avp(conformance_none)") end)
case("pv.gete string", function() return KSR.pv.gete("$rm") end)
case("pv.getw string", function() return KSR.pv.getw("$rm") end)
case("pv.getvs string", function() return KSR.pv.getvs("$rm", "dflt") end)
case("pv.getvn string", function() return KSR.pv.getvn("$rm", 42) end)
case("pv.geti string", function() return KSR.pv.geti("$rm") end)
case("pv.geti numeric string", function() return KSR.pv.geti("$hdr(X-Num)") end)
case("pv.geti number", function() return KSR.pv.geti("$cs") end)
case("pv.is_null string", function() return KSR.pv.is_null("$rm") end)
case("pv.gete number", function() return KSR.pv.gete("$cs") end)
case("pv.getvs number", function() return KSR.pv.getvs("$cs", "dflt") end)
case("pv.getvn number", function() return KSR.pv.getvn("$cs", 42) end)
case("pv.getvn non-numeric default", function() return KSR.pv.getvn("$avp(conformance_none)", "abc") end)
case("pv.gete unknown pv", function() return KSR.pv.gete("$conformance_nope") end)
case("pv.is_null unknown pv", function() return KSR.pv.is_null("$conformance_nope") end)

-- setting, reading back and unsetting, per class
local function setget(name, setf, v)
	return function()
		local ok = KSR.pv[setf](name, v)
		return ok, KSR.pv.get(name)
	end
end
case("pv.sets $var", setget("$var(cf_s)", "sets", "text"))
case("pv.seti $var", setget("$var(cf_i)", "seti", 12))
case("pv.sets $var number", setget("$var(cf_sn)", "sets", 12.5))
case("pv.sets $var nil", setget("$var(cf_snil)", "sets", nil))
case("pv.seti $var numeric string", setget("$var(cf_is)", "seti", "7"))
case("pv.seti $var non-numeric", setget("$var(cf_in)", "seti", "abc"))
case("pv.seti $var float", setget("$var(cf_if)", "seti", 3.7))
case("pv.seti $var negative", setget("$var(cf_ineg)", "seti", -5))
case("pv.sets $avp", setget("$avp(cf_s)", "sets", "text"))
case("pv.seti $avp", setget("$avp(cf_i)", "seti", 12))
case("pv.sets $shv", setget("$shv(cf_s)", "sets", "text"))
case("pv.seti $shv", setget("$shv(cf_i)", "seti", 12))
case("pv.sets $ru", setget("$ru", "sets", "sip:carol@example.net:5070;transport=tcp"))
case("pv.sets $ru invalid", setget("$ru", "sets", "not a uri"))
case("pv.sets $rU", function() return KSR.pv.sets("$rU", "dave"), pv("$rU"), pv("$ru") end)
case("pv.sets $rd", function() return KSR.pv.sets("$rd", "example.net"), pv("$rd"), pv("$ru") end)
case("pv.sets $rp", function() return KSR.pv.sets("$rp", "5080"), pv("$rp"), pv("$ru") end)
case("pv.seti $rp", function() return KSR.pv.seti("$rp", 5090), pv("$rp"), pv("$ru") end)
case("pv.sets $du", setget("$du", "sets", "sip:127.0.0.1:5999"))
case("pv.sets $du invalid", setget("$du", "sets", "nonsense"))
case("pv.sets read-only $ci", setget("$ci", "sets", "x"))
case("pv.sets read-only $hdr", setget("$hdr(X-Multi)", "sets", "x"))
-- Is it writable? (each pv kemi reads; the value read back after, and for
-- header pvs the request the next hop receives)
for _, name in ipairs({"$rm", "$rz", "$cs", "$Ts", "$pr", "$mb", "$T_reply_code"}) do
	case("pv.sets " .. name .. " writable", function()
		local v = "sip:w@example.net"
		return KSR.pv.sets(name, v), KSR.pv.get(name) == v
	end)
end
local headerPVs = {["$fu"] = "sip:carol@example.net", ["$fU"] = "carol", ["$fd"] = "example.net", ["$fn"] = "Carol",
	["$tu"] = "sip:dave@example.net", ["$tU"] = "dave", ["$td"] = "example.net", ["$tn"] = "Dave",
	["$ua"] = "other-ua", ["$rb"] = "new body", ["$ct"] = "<sip:x@192.0.2.7>", ["$cT"] = "text/html"}
for _, name in ipairs({"$fu", "$fU", "$fd", "$fn", "$tu", "$tU", "$td", "$tn", "$ua", "$rb", "$ct", "$cT"}) do
	case("pv.sets " .. name .. " writable", function()
		local v = headerPVs[name]
		return KSR.pv.sets(name, v), KSR.pv.get(name) == v, KSR.forward_uri(sink())
	end, {expect = "fwd"})
end
case("pv.unset $fn", function()
	return KSR.pv.unset("$fn"), KSR.pv.get("$fn"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("pv.unset $tu", function()
	return KSR.pv.unset("$tu"), KSR.pv.get("$tu"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("pv.sets $fU and $td", function()
	return KSR.pv.sets("$fU", "erin"), KSR.pv.sets("$td", "example.com"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("pv.seti $fU", function()
	return KSR.pv.seti("$fU", 42), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("pv.sets unknown pv", function() return KSR.pv.sets("$conformance_nope", "x") end)
case("pv.sets $var dynamic name", function()
	KSR.pv.sets("$var(cf_dynname)", "cf_target")
	return KSR.pv.sets("$var($var(cf_dynname))", "v"), pv("$var(cf_target)")
end)
case("pv.unset $var", function()
	KSR.pv.sets("$var(cf_u)", "x")
	return KSR.pv.unset("$var(cf_u)"), pv("$var(cf_u)"), KSR.pv.is_null("$var(cf_u)")
end)
case("pv.$avp set twice", function()
	KSR.pv.sets("$avp(cf_t)", "first")
	KSR.pv.seti("$avp(cf_t)", 2)
	return pv("$avp(cf_t)"), pv("$(avp(cf_t)[0])"), pv("$(avp(cf_t)[1])"), pv("$(avp(cf_t)[-1])"),
		pv("$(avp(cf_t)[2])"), pv("$(avp(cf_t)[*])"), pv("$(avp(cf_t)[-2])")
end)
case("pv.unset $avp set twice", function()
	KSR.pv.sets("$avp(cf_t2)", "first")
	KSR.pv.sets("$avp(cf_t2)", "second")
	return KSR.pv.unset("$avp(cf_t2)"), pv("$avp(cf_t2)"), KSR.pv.unset("$avp(cf_t2)"), pv("$avp(cf_t2)")
end)
case("pv.unset $(avp[*])", function()
	KSR.pv.sets("$avp(cf_t3)", "first")
	KSR.pv.sets("$avp(cf_t3)", "second")
	return KSR.pv.unset("$(avp(cf_t3)[*])"), pv("$avp(cf_t3)")
end)
case("pv.sets $(avp[*])", function()
	KSR.pv.sets("$avp(cf_t4)", "first")
	KSR.pv.sets("$avp(cf_t4)", "second")
	return KSR.pv.sets("$(avp(cf_t4)[*])", "only"), pv("$avp(cf_t4)"), pv("$(avp(cf_t4)[1])")
end)
case("pv.$xavp fields", function()
	local r = {KSR.pv.sets("$xavp(cfx=>a)", "one"), KSR.pv.seti("$xavp(cfx[0]=>b)", 2),
		KSR.pv.sets("$xavp(cfx[0]=>a)", "uno")}
	for _, n in ipairs({"$xavp(cfx=>a)", "$xavp(cfx[0]=>a)", "$xavp(cfx[0]=>a[1])", "$xavp(cfx=>b)",
		"$xavp(cfx=>nope)", "$xavp(cfx[1]=>a)"}) do
		r[#r + 1] = pv(n)
	end
	return unpack(r)
end)
case("pv.$xavp new item", function()
	KSR.pv.sets("$xavp(cfy=>a)", "first")
	KSR.pv.sets("$xavp(cfy=>a)", "second")
	return pv("$xavp(cfy=>a)"), pv("$xavp(cfy[1]=>a)"), pv("$xavp(cfy[-1]=>a)"), pv("$xavp(cfy[2]=>a)")
end)
case("pv.$xavp set by index", function()
	KSR.pv.sets("$xavp(cfz=>a)", "first")
	KSR.pv.sets("$xavp(cfz=>a)", "second")
	return KSR.pv.sets("$xavp(cfz[1]=>a[0])", "changed"), KSR.pv.sets("$xavp(cfz[5]=>a)", "none"),
		pv("$xavp(cfz[1]=>a)"), pv("$xavp(cfz[0]=>a)")
end)
case("pv.$xavp single value", function()
	KSR.pv.sets("$xavp(cfv)", "v1")
	KSR.pv.seti("$xavp(cfv)", 7)
	return pv("$xavp(cfv)"), pv("$xavp(cfv[1])"), KSR.pv.sets("$xavp(cfv[1])", "v1b"), pv("$xavp(cfv[1])"),
		KSR.pv.sets("$xavp(cfv[9])", "x")
end)
case("pv.unset $xavp", function()
	KSR.pv.sets("$xavp(cfu=>a)", "first")
	KSR.pv.sets("$xavp(cfu=>a)", "second")
	KSR.pv.sets("$xavp(cfu[0]=>b)", "bee")
	return KSR.pv.unset("$xavp(cfu[0]=>b)"), pv("$xavp(cfu=>b)"), pv("$xavp(cfu=>a)"),
		KSR.pv.unset("$xavp(cfu)"), pv("$xavp(cfu=>a)"), KSR.pv.unset("$xavp(cfu[*])"), pv("$xavp(cfu=>a)")
end)
case("pv.$xavu", function()
	return KSR.pv.sets("$xavu(cfu1)", "one"), KSR.pv.sets("$xavu(cfu1)", "two"), pv("$xavu(cfu1)"),
		KSR.pv.sets("$xavu(cfu2=>a)", "x"), KSR.pv.seti("$xavu(cfu2=>a)", 5), KSR.pv.sets("$xavu(cfu2=>b)", "y"),
		pv("$xavu(cfu2=>a)"), pv("$xavu(cfu2=>b)"), KSR.pv.unset("$xavu(cfu2=>a)"), pv("$xavu(cfu2=>a)"),
		pv("$xavu(cfu2=>b)"), KSR.pv.sets("$xavu(cfu1=>c)", "z"), pv("$xavu(cfu1=>c)"), KSR.pv.unset("$xavu(cfu1)"),
		pv("$xavu(cfu1=>c)"), pv("$xavu(cfu_none)"), pv("$xavp(cfu2=>b)")
end)
case("pv.$xavp does not survive the message", function() return pv("$xavp(cfx=>a)") end)
case("pvx.xavp_seti and xavp_sets", function()
	return KSR.pvx.xavp_seti("cpx1", 5), KSR.pvx.xavp_sets("cpx1", "five"), KSR.pvx.xavp_get("cpx1"),
		pv("$xavp(cpx1[1])"), KSR.pvx.xavp_gete("cpx_none"), KSR.pvx.xavp_getw("cpx_none"),
		KSR.pvx.xavp_is_null("cpx1"), KSR.pvx.xavp_is_null("cpx_none"), KSR.pvx.xavp_rm("cpx1"),
		KSR.pvx.xavp_get("cpx1"), KSR.pvx.xavp_rm("cpx_none")
end)
case("pvx.xavp_child", function()
	return KSR.pvx.xavp_child_seti("cpx2", "a", 1), KSR.pvx.xavp_child_sets("cpx2", "b", "bee"),
		KSR.pvx.xavp_child_sets("cpx2", "a", "one"), KSR.pvx.xavp_child_get("cpx2", "a"), pv("$xavp(cpx2=>a[1])"),
		KSR.pvx.xavp_child_gete("cpx2", "nope"), KSR.pvx.xavp_child_getw("cpx2", "nope"),
		KSR.pvx.xavp_child_is_null("cpx2", "b"), KSR.pvx.xavp_child_rm("cpx2", "b"),
		KSR.pvx.xavp_child_is_null("cpx2", "b"), KSR.pvx.xavp_child_get("cpx2", "b"), pv("$xavp(cpx2[1]=>a)")
end)
case("pvx.xavp_child on a single value", function()
	KSR.pvx.xavp_sets("cpx3", "v")
	return KSR.pvx.xavp_child_sets("cpx3", "a", "x"), pv("$xavp(cpx3=>a)"), pv("$xavp(cpx3[1])")
end)
case("pvx.avp", function()
	return KSR.pvx.avp_seti("cpa", 1), KSR.pvx.avp_sets("cpa", "two"), KSR.pvx.avp_get("cpa"),
		pv("$(avp(cpa)[1])"), KSR.pvx.avp_gete("cpa_none"), KSR.pvx.avp_getw("cpa_none"),
		KSR.pvx.avp_rm("cpa"), KSR.pvx.avp_get("cpa"), KSR.pvx.avp_is_null("cpa"), KSR.pvx.avp_get("cpa"),
		KSR.pvx.avp_is_null("cpa_none")
end)
case("pv.shvset and varset initial values", function()
	return pv("$shv(cf_shv_init)"), pv("$shv(cf_shv_inits)"), pv("$var(cf_var_init)"), pv("$var(cf_var_inits)")
end)
case("pv.unset $avp", function()
	KSR.pv.sets("$avp(cf_u)", "x")
	return KSR.pv.unset("$avp(cf_u)"), pv("$avp(cf_u)"), KSR.pv.is_null("$avp(cf_u)")
end)
case("pv.unset $shv", function()
	KSR.pv.sets("$shv(cf_u)", "x")
	return KSR.pv.unset("$shv(cf_u)"), pv("$shv(cf_u)"), KSR.pv.is_null("$shv(cf_u)")
end)
case("pv.unset $du", function()
	KSR.pv.sets("$du", "sip:127.0.0.1:5999")
	return KSR.pv.unset("$du"), pv("$du")
end)
case("pv.unset read-only", function() return KSR.pv.unset("$ci") end)
case("pv.is_null unset $var", function() return KSR.pv.is_null("$var(conformance_never_set)") end)
case("pv.is_null unset $shv", function() return KSR.pv.is_null("$shv(conformance_never_set)") end)
case("pv.$var set by an earlier message", function() return pv("$var(cf_s)") end)
case("pv.$avp does not survive the message", function() return pv("$avp(cf_s)") end)
case("pv.$shv set by an earlier message", function() return pv("$shv(cf_s)") end)

---------------------------------------------------------------------------
-- KSR.hdr
---------------------------------------------------------------------------

case("hdr.is_present", function() return KSR.hdr.is_present("X-Multi") end)
case("hdr.is_present lower case", function() return KSR.hdr.is_present("x-multi") end)
case("hdr.is_present compact form", function() return KSR.hdr.is_present("f"), KSR.hdr.is_present("From") end)
case("hdr.is_present absent", function() return KSR.hdr.is_present("X-Nope") end)
case("hdr.is_present empty", function() return KSR.hdr.is_present("") end)
case("hdr.get", function() return KSR.hdr.get("X-Multi") end)
case("hdr.get compact form", function() return KSR.hdr.get("f") == KSR.hdr.get("From"), KSR.hdr.get("i") end)
for _, c in ipairs({"t", "T", "v", "m", "l", "c", "k", "s", "e", "o", "u", "x"}) do
	case("hdr compact " .. c, function()
		local v = KSR.hdr.get(c)
		return KSR.hdr.is_present(c), type(v), KSR.hdr.get_idx(c, -1) == v, KSR.pv.get("$hdr(" .. c .. ")") == v
	end, {profile = "body"})
end
case("hdr.remove compact form", function()
	return KSR.hdr.remove("m"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.append_after compact form", function()
	return KSR.hdr.append_after("X-Added: after-to\r\n", "t"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.get Via", function()
	local v = KSR.hdr.get("Via")
	return type(v), string.sub(v, 1, 22)
end)
case("hdr.get absent", function() return KSR.hdr.get("X-Nope") end)
case("hdr.gete absent", function() return KSR.hdr.gete("X-Nope") end)
case("hdr.getw absent", function() return KSR.hdr.getw("X-Nope") end)
case("hdr.gete present", function() return KSR.hdr.gete("User-Agent") end)
case("hdr.get_idx", function()
	return KSR.hdr.get_idx("X-Multi", 0), KSR.hdr.get_idx("X-Multi", 1), KSR.hdr.get_idx("X-Multi", -1),
		KSR.hdr.get_idx("X-Multi", 2), KSR.hdr.get_idx("X-Nope", 0)
end)
case("hdr.append", function() return KSR.hdr.append("X-Added: one\r\n") end, {expect = "fwd"})
-- (KSR.hdr.append KSR.hdr.insert)
for _, f in ipairs({"append", "insert"}) do
	case("hdr." .. f .. " then forward", function()
		return KSR.hdr[f]("X-Added: one\r\n"), KSR.forward_uri(sink())
	end, {expect = "fwd"})
	case("hdr." .. f .. " is visible", function()
		KSR.hdr[f]("X-Added: one\r\n")
		return KSR.hdr.is_present("X-Added"), KSR.hdr.get("X-Added")
	end)
	case("hdr." .. f .. " without CRLF", function()
		return KSR.hdr[f]("X-Added: nocrlf"), KSR.forward_uri(sink())
	end, {expect = "fwd"})
	case("hdr." .. f .. " not a header", function()
		return KSR.hdr[f]("not a header\r\n"), KSR.forward_uri(sink())
	end, {expect = "fwd"})
end
case("hdr.append two headers", function()
	return KSR.hdr.append("X-A: 1\r\nX-B: 2\r\n"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.append_after", function()
	return KSR.hdr.append_after("X-Added: after\r\n", "User-Agent"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.append_after absent", function()
	return KSR.hdr.append_after("X-Added: after\r\n", "X-Nope"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.insert_before", function()
	return KSR.hdr.insert_before("X-Added: before\r\n", "User-Agent"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.insert_before absent", function()
	return KSR.hdr.insert_before("X-Added: before\r\n", "X-Nope"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.remove then forward", function()
	return KSR.hdr.remove("X-Multi"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.remove is visible", function()
	KSR.hdr.remove("X-Multi")
	return KSR.hdr.is_present("X-Multi"), KSR.hdr.get("X-Multi")
end)
case("hdr.remove absent", function() return KSR.hdr.remove("X-Nope") end)
case("hdr.rmappend", function()
	return KSR.hdr.rmappend("X-Multi", "X-Multi: three\r\n"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.rminsert", function()
	return KSR.hdr.rminsert("X-Multi", "X-Multi: zero\r\n"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.rmappend absent", function()
	return KSR.hdr.rmappend("X-Nope", "X-Nope: new\r\n"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("hdr.append_to_reply", function() return KSR.hdr.append_to_reply("X-Reply: one\r\n") end)
case("hdr.append_to_reply two", function() return KSR.hdr.append_to_reply("X-Reply: one\r\nX-Reply2: two\r\n") end)
case("hdr.append_to_reply not a header", function() return KSR.hdr.append_to_reply("not a header\r\n") end)
case("hdr.append_to_reply empty", function() return KSR.hdr.append_to_reply("") end)

---------------------------------------------------------------------------
-- KSR.sl (the case's own reply comes first; the Go side compares it)
---------------------------------------------------------------------------

case("sl.send_reply", function() return KSR.sl.send_reply(404, "Not Here") end)
case("sl.sl_send_reply", function() return KSR.sl.sl_send_reply(403, "Go Away") end)
case("sl.sl_reply_error", function() return KSR.sl.sl_reply_error() end)
case("sl.send_reply with append_to_reply", function()
	KSR.hdr.append_to_reply("X-Reply: early\r\n")
	return KSR.sl.send_reply(486, "Busy")
end)
case("sl.send_reply code 99", function() return KSR.sl.send_reply(99, "Too Low") end)
case("sl.send_reply code 700", function() return KSR.sl.send_reply(700, "Too High") end)
case("sl.send_reply empty reason", function() return KSR.sl.send_reply(480, "") end)
case("sl.send_reply string code", function() return KSR.sl.send_reply("abc", "Bad Code") end)
case("sl.send_reply numeric string code", function() return KSR.sl.send_reply("482", "Loop") end)
case("sl.send_reply 100", function() return KSR.sl.send_reply(100, "Trying") end)
case("sl.send_reply on INVITE", function() return KSR.sl.send_reply(488, "Not Here") end, {method = "INVITE"})

---------------------------------------------------------------------------
-- KSR.tm (one hop: the sink answers relayed requests with 200)
---------------------------------------------------------------------------

case("tm.t_check_trans none", function() return KSR.tm.t_check_trans() end)
case("tm.t_newtran", function() return KSR.tm.t_newtran(), KSR.tm.t_check_trans() end)
case("tm.t_newtran twice", function() return KSR.tm.t_newtran(), KSR.tm.t_newtran() end)
case("tm.t_is_canceled none", function() return KSR.tm.t_is_canceled() end)
case("tm.t_is_canceled", function() KSR.tm.t_newtran() return KSR.tm.t_is_canceled() end)
case("tm.t_reply without transaction", function() return KSR.tm.t_reply(202, "Accepted") end)
case("tm.t_reply", function()
	return KSR.tm.t_newtran(), KSR.tm.t_reply(202, "Accepted"), KSR.tm.t_get_status_code(),
		KSR.tm.t_check_status("202"), KSR.tm.t_check_status("4[0-9][0-9]"), KSR.tm.t_check_status("20")
end)
case("tm.t_reply twice", function()
	return KSR.tm.t_newtran(), KSR.tm.t_reply(180, "Ringing"), KSR.tm.t_reply(202, "Accepted"), KSR.tm.t_reply(203, "Again")
end)
case("tm.t_reply with append_to_reply", function()
	KSR.tm.t_newtran()
	KSR.hdr.append_to_reply("X-Reply: tm\r\n")
	return KSR.tm.t_reply(202, "Accepted")
end)
case("tm.t_get_status_code none", function() return KSR.tm.t_get_status_code() end)
case("tm.t_get_status_code new", function() KSR.tm.t_newtran() return KSR.tm.t_get_status_code() end)
case("tm.t_check_status new", function()
	KSR.tm.t_newtran()
	return KSR.tm.t_check_status("0"), KSR.tm.t_check_status("^[1-6]")
end)
case("tm.t_check_status after 180", function()
	KSR.tm.t_newtran()
	KSR.tm.t_reply(180, "Ringing")
	return KSR.tm.t_get_status_code(), KSR.tm.t_check_status("18"), KSR.tm.t_check_status("^2"), KSR.tm.t_check_trans()
end, {method = "INVITE"})
case("tm.t_check_status none", function() return KSR.tm.t_check_status("200") end)
case("tm.t_check_status invalid regex", function()
	KSR.tm.t_newtran()
	KSR.tm.t_reply(202, "Accepted")
	return KSR.tm.t_check_status("([")
end)
case("tm.$T_reply_code after t_reply", function()
	KSR.tm.t_newtran()
	KSR.tm.t_reply(202, "Accepted")
	return pv("$T_reply_code"), pv("$T_reply_reason"), pv("$T(reply_type)")
end)
case("tm.$T_reply_code after t_newtran", function()
	KSR.tm.t_newtran()
	return pv("$T_reply_code"), pv("$T_reply_reason"), pv("$T(reply_type)")
end)
case("tm.t_branch_timeout none", function() return KSR.tm.t_branch_timeout() end)
case("tm.t_branch_replied none", function() return KSR.tm.t_branch_replied() end)
case("tm.t_on_failure", function() return KSR.tm.t_on_failure("ksr_conformance_failure") end)
case("tm.t_on_reply", function() return KSR.tm.t_on_reply("ksr_conformance_reply") end)
case("tm.t_on_branch", function() return KSR.tm.t_on_branch("ksr_conformance_branch") end)
case("tm.t_relay", function()
	KSR.pv.sets("$du", sink())
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_relay Max-Forwards", function()
	KSR.pv.sets("$du", sink())
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_relay INVITE", function()
	KSR.pv.sets("$du", sink())
	return KSR.tm.t_relay()
end, {method = "INVITE", expect = "relay"})
case("tm.t_relay with branch route", function()
	KSR.pv.sets("$du", sink())
	KSR.tm.t_on_branch("ksr_conformance_branch")
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_relay_to_proto_addr", function()
	local h, p = sinkHost()
	return KSR.tm.t_relay_to_proto_addr("udp", h, p)
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_on_failure failure route", function()
	KSR.pv.sets("$du", sink())
	KSR.tm.t_on_failure("ksr_conformance_failure_report")
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "fwd,resume"})
case("tm.t_on_reply reply route", function()
	KSR.pv.sets("$du", sink())
	KSR.tm.t_on_reply("ksr_conformance_reply_report")
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_on_reply on failure reply", function()
	KSR.pv.sets("$du", sink())
	KSR.tm.t_on_reply("ksr_conformance_reply_report")
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})
case("tm.t_relay_to_proto_addr invalid proto", function()
	local h, p = sinkHost()
	return KSR.tm.t_relay_to_proto_addr("nope", h, p)
end, {method = "MESSAGE"})

function ksr_conformance_failure() end
function ksr_conformance_reply() end

-- The sink answers the requests of cases named "... failure ..." with 486;
-- this failure route reports what it sees in the reason of a 299.
function ksr_conformance_failure_report()
	local r = {
		"code=" .. tostring(pv("$T_reply_code")),
		"reason=" .. tostring(pv("$T_reply_reason")),
		"type=" .. tostring(pv("$T(reply_type)")),
		"status=" .. tostring(KSR.tm.t_get_status_code()),
		"check486=" .. tostring(KSR.tm.t_check_status("486")),
		"timeout=" .. tostring(KSR.tm.t_branch_timeout()),
		"replied=" .. tostring(KSR.tm.t_branch_replied()),
		"canceled=" .. tostring(KSR.tm.t_is_canceled()),
		"rm=" .. tostring(pv("$rm")),
	}
	KSR.tm.t_reply(299, "Resumed failure " .. table.concat(r, " "))
end

-- This reply route marks the relayed reply with what it sees.
function ksr_conformance_reply_report()
	local r = {
		"rs=" .. tostring(pv("$rs")),
		"rr=" .. tostring(pv("$rr")),
		"code=" .. tostring(pv("$T_reply_code")),
		"status=" .. tostring(KSR.tm.t_get_status_code()),
		"check=" .. tostring(KSR.tm.t_check_status("200")),
		"rm=" .. tostring(pv("$rm")),
	}
	KSR.hdr.append("X-On-Reply: " .. table.concat(r, " ") .. "\r\n")
end
function ksr_conformance_branch()
	KSR.hdr.append("X-Branch: yes\r\n")
end

---------------------------------------------------------------------------
-- KSR.maxfwd (Max-Forwards is the script's: t_relay and forward leave it)
---------------------------------------------------------------------------

case("maxfwd.process_maxfwd", function()
	return KSR.maxfwd.process_maxfwd(10), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("maxfwd.process_maxfwd twice", function()
	return KSR.maxfwd.process_maxfwd(10), KSR.maxfwd.process_maxfwd(10), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("maxfwd.process_maxfwd out of range", function() return KSR.maxfwd.process_maxfwd(300) end)
case("maxfwd.is_maxfwd_lt", function()
	return KSR.maxfwd.is_maxfwd_lt(71), KSR.maxfwd.is_maxfwd_lt(70), KSR.maxfwd.is_maxfwd_lt(5)
end)
case("maxfwd.t_relay after process_maxfwd", function()
	KSR.maxfwd.process_maxfwd(10)
	KSR.pv.sets("$du", sink())
	return KSR.tm.t_relay()
end, {method = "MESSAGE", expect = "relay"})

---------------------------------------------------------------------------
-- KSR.textops (edits show in the request the next hop receives)
---------------------------------------------------------------------------

case("textops.search", function()
	return KSR.textops.search("X-Num: 4[0-9]"), KSR.textops.search("x-num: 42"), KSR.textops.search("X-Nope"), KSR.textops.search("")
end)
case("textops.search_body", function() return KSR.textops.search_body("hello"), KSR.textops.search_body("nope") end, {profile = "body"})
case("textops.search_body no body", function() return KSR.textops.search_body("hello") end)
case("textops.is_present_hf", function()
	return KSR.textops.is_present_hf("X-Num"), KSR.textops.is_present_hf("x-multi"), KSR.textops.is_present_hf("X-Nope"), KSR.textops.is_present_hf("f")
end)
case("textops.is_present_hf_re", function() return KSR.textops.is_present_hf_re("^X-M"), KSR.textops.is_present_hf_re("^Y-") end)
case("textops.remove_hf", function()
	return KSR.textops.remove_hf("X-Multi"), KSR.textops.remove_hf("X-Nope"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.remove_hf_re", function()
	return KSR.textops.remove_hf_re("^X-(Multi|Num)$"), KSR.textops.remove_hf_re("^Y-"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.replace", function()
	return KSR.textops.replace("one", "uno"), KSR.textops.replace("nomatch", "x"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.replace_all", function()
	return KSR.textops.replace_all("X-Multi: [a-z]+", "X-Multi: many"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.replace_body", function()
	return KSR.textops.replace_body("hello", "bye"), KSR.textops.replace_body("nomatch", "x"), KSR.forward_uri(sink())
end, {expect = "fwd", profile = "body"})
case("textops.replace_body_all", function()
	return KSR.textops.replace_body_all("l", "L"), KSR.forward_uri(sink())
end, {expect = "fwd", profile = "body"})
case("textops.search_append", function()
	return KSR.textops.search_append("X-Num: 42", ";appended"), KSR.textops.search_append("nomatch", "x"),
		KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.search_append_body", function()
	return KSR.textops.search_append_body("hel", "[x]"), KSR.textops.search_append_body("nomatch", "x"),
		KSR.forward_uri(sink())
end, {expect = "fwd", profile = "body"})
case("textops.remove_hf_idx", function()
	return KSR.textops.remove_hf_idx("X-Multi", 1), KSR.textops.remove_hf_idx("X-Multi", 5),
		KSR.textops.remove_hf_idx("X-Num", -1), KSR.textops.remove_hf_idx("X-Nope", -3), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.subst_uri", function()
	return KSR.textops.subst_uri("/bob@example.org/carol@example.net/"), KSR.textops.subst_uri("/nomatch/x/"),
		pv("$ru"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.search_hf", function()
	return KSR.textops.search_hf("X-Multi", "two", ""), KSR.textops.search_hf("X-Multi", "two", "f"),
		KSR.textops.search_hf("X-Multi", "two", "l"), KSR.textops.search_hf("X-Multi", "one", "l"),
		KSR.textops.search_hf("X-Nope", "x", ""), KSR.textops.search_hf("f", "alice", "")
end)
case("textops.remove_hf_match", function()
	return KSR.textops.remove_hf_match("X-Multi", "eq", "two"), KSR.textops.remove_hf_match("X-Multi", "eq", "zzz"),
		KSR.textops.remove_hf_match("X-Num", "re", "^4"), KSR.textops.remove_hf_match("X-Multi", "xx", "one"),
		KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.remove_hf_match ne and in", function()
	return KSR.textops.remove_hf_match("X-Multi", "ne", "one"), KSR.textops.remove_hf_match("User-Agent", "in", "ua/"),
		KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.subst", function()
	return KSR.textops.subst("/X-Num: ([0-9]+)/X-Num: \\1\\1/"), KSR.textops.subst("/nomatch/x/"), KSR.textops.subst("bad"),
		KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.subst global", function()
	return KSR.textops.subst("/(one|two)$/n-\\1/g"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.subst_body", function()
	return KSR.textops.subst_body("/h(el)lo/H\\1/"), KSR.forward_uri(sink())
end, {expect = "fwd", profile = "body"})
case("textops.has_body", function() return KSR.textops.has_body(), KSR.textops.has_body_type("text/plain"), KSR.textops.has_body_type("application/sdp") end,
	{profile = "body"})
case("textops.has_body none", function() return KSR.textops.has_body(), KSR.textops.has_body_type("") end)
case("textops.set_body", function()
	return KSR.textops.set_body("new body", "text/html"), KSR.textops.set_body("", "text/html"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("textops.set_reply_body", function()
	return KSR.textops.set_reply_body("reply body", "text/plain"), KSR.textops.set_reply_body("x", "")
end)
case("textops.strings", function()
	return KSR.textops.cmp_str("abc", "abc"), KSR.textops.cmp_str("abd", "abc"), KSR.textops.cmp_str("abb", "abc"), KSR.textops.cmp_istr("ABC", "abc"),
		KSR.textops.starts_with("abcdef", "abc"), KSR.textops.starts_with("ab", "abc"), KSR.textops.ends_with("abcdef", "def"),
		KSR.textops.ends_with("abcdef", "abc"), KSR.textops.str_find("abcdef", "cd"), KSR.textops.str_find("abc", "x"),
		KSR.textops.str_ifind("ABCDEF", "cd")
end)
case("textops.search_str", function()
	return KSR.textops.search_str("hello world", "wor"), KSR.textops.search_str("hello", "^x"), KSR.textops.search_str("hello", ""),
		KSR.textops.search_str("", "x")
end)
case("textops.in_list", function()
	return KSR.textops.in_list("b", "a, b ,c", ","), KSR.textops.in_list("d", "a,b,c", ","), KSR.textops.in_list_prefix("abcd", "x,ab", ","),
		KSR.textops.in_list_prefix("abcd", "x,y", ",")
end)

---------------------------------------------------------------------------
-- KSR.rr (the forwarded request shows the Record-Route)
---------------------------------------------------------------------------

case("rr.record_route", function() return KSR.rr.record_route(), KSR.forward_uri(sink()) end, {expect = "fwd"})
case("rr.record_route twice", function()
	return KSR.rr.record_route(), KSR.rr.record_route(), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_params", function()
	return KSR.rr.record_route_params("foo=bar"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_params leading semicolon", function()
	return KSR.rr.record_route_params(";foo=bar"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_preset", function()
	return KSR.rr.record_route_preset("sip:192.0.2.1:5070"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_preset two addresses", function()
	return KSR.rr.record_route_preset("sip:192.0.2.1:5070", "sip:192.0.2.2:5070"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_preset host:port", function()
	return KSR.rr.record_route_preset("192.0.2.1:5070", "192.0.2.2;transport=tcp"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_preset_one host", function()
	return KSR.rr.record_route_preset_one("proxy.example.net"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route then preset", function()
	return KSR.rr.record_route(), KSR.rr.record_route_preset_one("192.0.2.1"), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route_preset then record_route", function()
	return KSR.rr.record_route_preset_one("192.0.2.1"), KSR.rr.record_route(), KSR.forward_uri(sink())
end, {expect = "fwd"})
case("rr.record_route with existing Record-Route", function()
	return KSR.rr.record_route(), KSR.forward_uri(sink())
end, {profile = "rr", expect = "fwd"})
case("rr.loose_route without Route", function() return KSR.rr.loose_route(), pv("$du") end)
case("rr.loose_route preloaded", function() return KSR.rr.loose_route(), pv("$du") end, {profile = "route-other"})
case("rr.loose_route self then next", function() return KSR.rr.loose_route(), pv("$du") end, {profile = "route-self"})
case("rr.loose_route self only", function() return KSR.rr.loose_route(), pv("$du") end, {profile = "route-self-only"})
case("rr.loose_route then forward", function()
	return KSR.rr.loose_route(), KSR.forward_uri(sink())
end, {profile = "route-self", expect = "fwd"})

---------------------------------------------------------------------------
-- KSR.mqueue and $mqk / $mqv / $mq_size (each case leaves its queue empty)
---------------------------------------------------------------------------

local function drain(q)
	while KSR.mqueue.mq_fetch(q) == 1 do end
end

case("mqueue.mq_add", function()
	local r = pack(KSR.mqueue.mq_add("cq", "k1", "v1"), KSR.mqueue.mq_size("cq"))
	drain("cq")
	return unpack(r, 1, r.n)
end)
case("mqueue.mq_fetch", function()
	KSR.mqueue.mq_add("cq", "k1", "v1")
	KSR.mqueue.mq_add("cq", "k2", "v2")
	local r = pack(KSR.mqueue.mq_fetch("cq"), KSR.mqueue.mqk_get("cq"), KSR.mqueue.mqv_get("cq"),
		pv("$mqk(cq)"), pv("$mqv(cq)"), pv("$mq_size(cq)"), KSR.mqueue.mq_size("cq"))
	drain("cq")
	return unpack(r, 1, r.n)
end)
case("mqueue.mq_fetch empty", function() return KSR.mqueue.mq_fetch("cq") end)
case("mqueue.mq_fetch unknown queue", function() return KSR.mqueue.mq_fetch("nope") end)
case("mqueue.mq_add unknown queue", function() return KSR.mqueue.mq_add("nope", "k", "v") end)
case("mqueue.mq_size unknown queue", function() return KSR.mqueue.mq_size("nope") end)
case("mqueue.mq_size empty", function() return KSR.mqueue.mq_size("cq") end)
case("mqueue.mqk_get without fetch", function()
	KSR.mqueue.mq_pv_free("cq")
	return KSR.mqueue.mqk_get("cq"), KSR.mqueue.mqv_get("cq"), KSR.mqueue.mqk_gete("cq"),
		KSR.mqueue.mqv_gete("cq"), KSR.mqueue.mqk_getw("cq"), KSR.mqueue.mqv_getw("cq")
end)
case("mqueue.mqk_get unknown queue", function()
	return KSR.mqueue.mqk_get("nope"), KSR.mqueue.mqv_get("nope"), KSR.mqueue.mqk_gete("nope"),
		KSR.mqueue.mqv_gete("nope"), KSR.mqueue.mqk_getw("nope"), KSR.mqueue.mqv_getw("nope")
end)
case("mqueue.gete getw after fetch", function()
	KSR.mqueue.mq_add("cq", "k", "v")
	KSR.mqueue.mq_fetch("cq")
	return KSR.mqueue.mqk_gete("cq"), KSR.mqueue.mqv_gete("cq"), KSR.mqueue.mqk_getw("cq"), KSR.mqueue.mqv_getw("cq")
end)
case("mqueue.fetched item survives the message", function()
	-- the previous case fetched k=v; the fetched item is per process
	return KSR.mqueue.mqk_get("cq"), KSR.mqueue.mqv_get("cq")
end)
case("mqueue.empty key and value", function()
	KSR.mqueue.mq_add("cq", "", "")
	return KSR.mqueue.mq_fetch("cq"), KSR.mqueue.mqk_get("cq"), KSR.mqueue.mqv_get("cq"),
		KSR.mqueue.mqk_gete("cq"), KSR.mqueue.mqk_getw("cq"), pv("$mqk(cq)")
end)
case("mqueue.mq_pv_free", function()
	KSR.mqueue.mq_add("cq", "k", "v")
	KSR.mqueue.mq_fetch("cq")
	return KSR.mqueue.mq_pv_free("cq"), KSR.mqueue.mqk_get("cq"), pv("$mqk(cq)")
end)
case("mqueue.mq_pv_free unknown queue", function() return KSR.mqueue.mq_pv_free("nope") end)
case("mqueue.size limit drops the oldest", function()
	local r = pack(KSR.mqueue.mq_add("cq2", "a", "1"), KSR.mqueue.mq_add("cq2", "b", "2"),
		KSR.mqueue.mq_add("cq2", "c", "3"), KSR.mqueue.mq_size("cq2"), KSR.mqueue.mq_fetch("cq2"),
		KSR.mqueue.mqk_get("cq2"))
	drain("cq2")
	return unpack(r, 1, r.n)
end)
case("mqueue.numeric key", function()
	KSR.mqueue.mq_add("cq", 12, 34)
	return KSR.mqueue.mq_fetch("cq"), KSR.mqueue.mqk_get("cq"), KSR.mqueue.mqv_get("cq"), pv("$mqk(cq)")
end)
case("mqueue.$mq_size", function()
	KSR.mqueue.mq_add("cq", "a", "1")
	KSR.mqueue.mq_add("cq", "b", "2")
	local r = pack(pv("$mq_size(cq)"), pv("$mq_size(nope)"))
	drain("cq")
	return unpack(r, 1, r.n)
end)
case("mqueue.$mqk unknown queue", function() return pv("$mqk(nope)"), pv("$mqv(nope)") end)

---------------------------------------------------------------------------
-- KSR.async (expect "resume": the resumed function answers "Resumed ...")
---------------------------------------------------------------------------

function ksr_conformance_resume()
	KSR.tm.t_reply(299, "Resumed gname=" .. tostring(KSR.async.get_gname()) .. " data=" .. tostring(KSR.async.get_data()))
end
function ksr_conformance_task()
end

case("async.get_gname", function() return KSR.async.get_gname() end)
case("async.get_data", function() return KSR.async.get_data() end)
case("async.$async(gname)", function() return pv("$async(gname)") end)
case("async.$async(data)", function() return pv("$async(data)") end)
case("async.ms_route", function() return KSR.async.ms_route("ksr_conformance_resume", 20) end,
	{method = "MESSAGE", expect = "resume"})
case("async.route", function() return KSR.async.route("ksr_conformance_resume", 1) end,
	{method = "MESSAGE", expect = "resume"})
case("async.task_route", function() return KSR.async.task_route("ksr_conformance_resume") end,
	{method = "MESSAGE", expect = "resume"})
-- an INVITE suspended gets a 100 with tm's auto_inv_100_reason (t_suspend)
case("async.task_route INVITE", function() return KSR.async.task_route("ksr_conformance_resume") end,
	{method = "INVITE", expect = "resume"})
case("async.task_group_route unknown group", function()
	return KSR.async.task_group_route("ksr_conformance_resume", "nogroup")
end, {method = "MESSAGE"})
case("async.task_data", function() return KSR.async.task_data("ksr_conformance_task", "d1") end)
case("async.task_group_data unknown group", function()
	return KSR.async.task_group_data("ksr_conformance_task", "nogroup", "d1")
end)
case("async.sleep exists", function() return type(KSR.async.sleep), type(KSR.async.ms_sleep) end)

---------------------------------------------------------------------------
-- KSR.sworker (Debian's Kamailio 5.6 does not build the sworker module)
---------------------------------------------------------------------------

case("sworker.active", function()
	if KSR.sworker == nil then
		return "no sworker module"
	end
	return KSR.sworker.active()
end)

---------------------------------------------------------------------------
-- argument rules of the KEMI binding (app_lua_api.c)
---------------------------------------------------------------------------

case("args.too few", function() return KSR.pv.get() end)
case("args.too few of two", function() return KSR.pv.getvs("$rm") end)
case("args.too few export table", function() return KSR.mqueue.mq_add("cq", "k") end)
case("args.too few int", function() return KSR.setflag() end)
case("args.extra ignored", function() return KSR.pv.get("$rm", "extra") end)
case("args.extra ignored by no-argument function", function() return KSR.is_OPTIONS("extra") end)
case("args.extra ignored export table", function() return KSR.mqueue.mq_size("cq", "extra") end)
case("args.extra ignored by hdr", function() return KSR.hdr.is_present("X-Multi", 1) end)
case("args.six arguments", function() return KSR.pv.get("$rm", 1, 2, 3, 4, 5) end)
case("args.seven arguments", function() return KSR.pv.get("$rm", 1, 2, 3, 4, 5, 6) end)
case("args.seven arguments export table", function() return KSR.mqueue.mq_size("cq", 1, 2, 3, 4, 5, 6) end)
case("args.nil str", function() return KSR.is_method_in(nil) end)
case("args.nil str export table", function() return KSR.mqueue.mq_size(nil) end)
case("args.boolean str", function() return KSR.is_method(true) end)
case("args.number str", function() return KSR.hdr.is_present(123) end)
case("args.non-numeric int", function() KSR.setflag("abc") return KSR.isflagset(0) end)
case("args.numeric string int", function() KSR.setflag("5") return KSR.isflagset(5) end)
case("args.hex string int", function() KSR.setflag("0x6") return KSR.isflagset(6) end)
case("args.float int", function() KSR.setflag(2.9) return KSR.isflagset(2), KSR.isflagset(3) end)
case("args.nil int", function() KSR.setflag(nil) return KSR.isflagset(0) end)
case("args.table str", function() return KSR.is_method({}) end)

---------------------------------------------------------------------------
-- which functions and submodules exist
---------------------------------------------------------------------------

for _, sub in ipairs({"pv", "hdr", "sl", "tm", "rr", "x", "mqueue", "async"}) do
	case("exists.KSR." .. sub, function() return type(KSR[sub]) end)
end
case("exists.KSR.nosuchmodule", function() return type(KSR.nosuchmodule) end)
case("exists.KSR.dispatcher (not loaded)", function() return type(KSR.dispatcher) end)
case("exists.KSR.pv.nosuchfunction", function() return type(KSR.pv.nosuchfunction) end)

---------------------------------------------------------------------------
-- the route
---------------------------------------------------------------------------

local function run(spec)
	local r = pack(pcall(spec.f))
	if not r[1] then
		local msg = tostring(r[2])
		msg = string.gsub(msg, "^[^:]*:%d+: ", "")
		return {n = 1, "error:" .. msg}, true
	end
	local out = {n = r.n - 1}
	for i = 2, r.n do
		out[i - 1] = r[i]
	end
	return out, false
end

function ksr_request_route()
	local name = KSR.pv.get("$hdr(X-Case)")
	if name == nil then
		KSR.sl.sl_send_reply(200, "Ready")
		return
	end
	local res, failed
	if name == "__list" then
		res = {n = #order}
		for i, n in ipairs(order) do
			local s = cases[n]
			res[i] = n .. "|" .. s.method .. "|" .. s.profile .. "|" .. s.expect
		end
	elseif cases[name] then
		res, failed = run(cases[name])
	else
		res, failed = {n = 1, "error:no such case"}, true
	end
	KSR.hdr.append_to_reply("X-R-N: " .. res.n .. "\r\n")
	for i = 1, res.n do
		local v = res[i]
		if failed then
			v = enc(v)
		else
			v = ser(v)
		end
		KSR.hdr.append_to_reply("X-R-" .. i .. ": " .. v .. "\r\n")
	end
	KSR.sl.sl_send_reply(200, "Case Done")
end
