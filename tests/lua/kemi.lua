-- kemi.lua: the routing script kemi's own Lua suites test (tests/lua/*_test.lua).
--
-- A request chooses what the script does with its method and X-* headers,
-- and what happened comes back in reply headers, so that the suites can
-- assert the behaviour of each module against Kamailio's (the reference is
-- ../../../shared/spec/kamailio-reference.md in the project workspace).
--
--   OPTIONS                  200 OK
--   MESSAGE                  mq_add(X-Queue or "events", Call-ID, body): 202 Queued, X-RC
--   X-Op: eval               runs the body as Lua in the worker: 200 Evaluated, X-Result
--   X-Op: route|ms_route     KSR.async.route(X-Fn, X-Delay) / ms_route
--   X-Op: task|task_group    KSR.async.task_route(X-Fn) / task_group_route(X-Fn, X-Group)
--   X-Op: data               KSR.async.task_data(X-Fn, body): 200 X-RC
--   X-Op: sleep              KSR.async.ms_sleep(X-Delay), then 200 Slept
--   X-Op: drop|exit|error    KSR.x.drop() / KSR.x.exit() / a Lua runtime error
--   X-Delegate: group        the pre-routing callback calls KSR.sworker.task(group)
--                            (and KSR.x.drop() unless X-No-Drop is present)

-- reply answers with code and reason, adding the headers of hdrs (sorted).
local function reply(code, reason, hdrs)
	local names = {}
	for name in pairs(hdrs or {}) do
		names[#names + 1] = name
	end
	table.sort(names)
	for _, name in ipairs(names) do
		KSR.hdr.append_to_reply(name .. ": " .. tostring(hdrs[name]) .. "\r\n")
	end
	return KSR.sl.send_reply(code, reason)
end

-- task_rc is what KSR.sworker.task returned for the message this worker
-- handles (a global: per worker VM, like Kamailio's per process state).
task_rc = nil

function ksr_pre_routing(evname)
	task_rc = nil
	local group = KSR.hdr.get("X-Delegate")
	if group == nil then
		return
	end
	KSR.pv.sets("$var(xdata)", KSR.hdr.get("X-Xdata") or "")
	-- an edit made here must not travel to the group: it gets the message as received
	KSR.hdr.append("X-Pre-Added: " .. evname .. "\r\n")
	task_rc = KSR.sworker.task(group)
	if task_rc == 1 and KSR.hdr.is_present("X-No-Drop") < 0 then
		KSR.x.drop()
	end
end

function ksr_request_route()
	if KSR.hdr.is_present("X-Delegate") > 0 then
		return reply(200, "Routed", {
			["X-Active"] = KSR.sworker.active(),
			["X-Gname"] = KSR.async.get_gname(),
			["X-Xdata"] = KSR.pv.get("$var(xdata)") or "<null>",
			["X-Pre-Added"] = KSR.hdr.get("X-Pre-Added") or "no",
			["X-Task-RC"] = task_rc or "none",
		})
	end
	local op = KSR.hdr.get("X-Op")
	if op == nil then
		if KSR.is_OPTIONS() then
			return reply(200, "OK", {["X-Proto"] = KSR.pv.get("$pr"), ["X-Src"] = KSR.pv.get("$si") .. ":" .. KSR.pv.get("$sp")})
		end
		if KSR.is_MESSAGE() then
			local rc = KSR.mqueue.mq_add(KSR.hdr.get("X-Queue") or "events", KSR.pv.get("$ci"), KSR.pv.get("$rb") or "")
			if rc ~= 1 then
				return reply(500, "Not Queued", {["X-RC"] = rc})
			end
			return reply(202, "Queued", {["X-RC"] = rc})
		end
		return reply(405, "Method Not Allowed")
	end
	if op == "eval" then
		return eval(KSR.pv.get("$rb") or "")
	end
	local fn = KSR.hdr.get("X-Fn") or "resume_reply"
	if op == "route" or op == "ms_route" then
		local rc = KSR.async[op](fn, tonumber(KSR.hdr.get("X-Delay")))
		if rc ~= 0 then
			return reply(500, "Not Suspended", {["X-RC"] = rc})
		end
		-- the Lua function goes on after a successful suspension (no implicit exit in KEMI)
		KSR.mqueue.mq_add("jobs", "after-suspend", tostring(rc))
		KSR.x.exit()
	elseif op == "task" or op == "task_group" then
		local rc
		if op == "task" then
			rc = KSR.async.task_route(fn)
		else
			rc = KSR.async.task_group_route(fn, KSR.hdr.get("X-Group") or "")
		end
		if rc ~= 0 then
			return reply(500, "Not Suspended", {["X-RC"] = rc})
		end
		KSR.x.exit()
	elseif op == "data" then
		return reply(200, "Queued", {["X-RC"] = KSR.async.task_data(fn, KSR.pv.get("$rb") or "")})
	elseif op == "sleep" then
		-- kemi extension: the handler pauses and goes on in place
		local before = KSR.pv.get("$TV(Sm)")
		local rc = KSR.async.ms_sleep(tonumber(KSR.hdr.get("X-Delay")))
		return reply(200, "Slept", {["X-RC"] = rc, ["X-Before"] = before, ["X-After"] = KSR.pv.get("$TV(Sm)")})
	elseif op == "drop" then
		KSR.x.drop()
	elseif op == "exit" then
		KSR.x.exit()
		reply(500, "Not Reached")
	elseif op == "error" then
		local t = nil
		return t.field -- runtime error: logged with file:line, no reply
	end
	return reply(400, "Unknown Op")
end

-- pack keeps trailing nils: {n = count, ...}.
local function pack(...)
	return {n = select("#", ...), ...}
end

-- eval runs src in this worker and replies with its results, comma
-- separated (nil as "nil"), or 500 with the error.
function eval(src)
	local chunk, err = loadstring(src, "eval")
	if chunk == nil then
		return reply(500, "Eval Error", {["X-Error"] = err})
	end
	local res = pack(pcall(chunk))
	if not res[1] then
		return reply(500, "Eval Error", {["X-Error"] = tostring(res[2])})
	end
	local out = {}
	for i = 2, res.n do
		out[#out + 1] = tostring(res[i])
	end
	return reply(200, "Evaluated", {["X-Result"] = table.concat(out, ",")})
end

-- Async resume functions: run as tm's t_continue does, in the failure
-- route with no arguments.

function resume_reply(...)
	KSR.mqueue.mq_add("jobs", "resumed", KSR.pv.get("$ci"))
	reply(200, "Resumed", {["X-Args"] = select("#", ...), ["X-Gname"] = KSR.async.get_gname()})
end

-- resume_silent neither replies nor relays: tm answers 500 after it.
function resume_silent()
	KSR.mqueue.mq_add("jobs", "resumed", KSR.pv.get("$ci"))
end

-- resume_again suspends the request a second time.
function resume_again()
	KSR.mqueue.mq_add("jobs", "again", KSR.pv.get("$ci"))
	KSR.async.ms_route("resume_reply", 100)
end

-- data_task is a KSR.async.task_data function: it gets the event name.
function data_task(evname)
	KSR.mqueue.mq_add("jobs", evname, KSR.async.get_data() .. "@" .. KSR.async.get_gname())
end
