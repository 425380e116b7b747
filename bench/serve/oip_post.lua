-- wrk script of `myelin bench serve`: POSTs one JSON body over and over and
-- prints a JSON summary line.
--
--   WRK_BODY=models/trees.json WRK_PATH=/v2/models/trees/infer \
--     wrk -t1 -c8 -d3s -s bench/serve/oip_post.lua http://127.0.0.1:PORT
--
-- WRK_BODY  file whose bytes are the request body (required)
-- WRK_PATH  request path (default "/")
-- WRK_IHCL  if set, the body is a binary-tensor request: its first WRK_IHCL
--           bytes are the JSON header (sent as Inference-Header-Content-Length,
--           with Content-Type application/octet-stream)
--
-- At the end it writes one line to stdout, after wrk's own report:
--   {"requests":N,"duration_s":S,"rps":R,"non_2xx":N,"errors":{...},
--    "latency_us":{"p50":..,"p99":..,"p999":..,"max":..,"mean":..}}
-- Latency is wrk's: from each request's send to its response, closed loop
-- (a connection sends its next request only after the previous answer), so
-- a stalled server sends fewer requests rather than worse latencies; use
-- open_loop.cc for latency under a fixed offered rate. non_2xx is wrk's
-- errors.status, which counts statuses >= 400 (the peers send no 1xx/3xx).
-- No response() callback is defined on purpose: defining one makes wrk parse
-- every header into Lua, which slows the client more than the servers.

local path = os.getenv("WRK_PATH") or "/"
local body_file = os.getenv("WRK_BODY")
if not body_file then
  io.stderr:write("oip_post.lua: set WRK_BODY to the request body file\n")
  os.exit(2)
end
local f = io.open(body_file, "rb")
if not f then
  io.stderr:write("oip_post.lua: cannot read WRK_BODY file " .. body_file .. "\n")
  os.exit(2)
end
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.path = path
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
local ihcl = os.getenv("WRK_IHCL")
if ihcl then
  wrk.headers["Content-Type"] = "application/octet-stream"
  wrk.headers["Inference-Header-Content-Length"] = ihcl
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local line = string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"non_2xx":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, seconds, summary.requests / seconds, e.status,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean)
  io.write(line)
end
