-- Shared part of the Bastion benchmark's wrk scripts (loaded with dofile by
-- each workload script).  Script arguments, given after "--" on the wrk
-- command line as key=value:
--   prefix=/parse/classes/BenchItem   collection path of the class under test
--   ids=FILE                          seeded objectIds, one per line
--   range=N                           values of "n" are drawn from [0, N)
--   appid=bench  masterkey=benchmaster

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
opts = {}
ids = {}
non2xx = 0
empty = 0
first_error = ""
counter = 0

function init(args)
  for _, a in ipairs(args) do
    local k, v = string.match(a, "^([%w_]+)=(.*)$")
    if k then opts[k] = v end
  end
  opts.prefix = opts.prefix or "/parse/classes/BenchItem"
  opts.range = tonumber(opts.range or "10000")
  wrk.headers["X-Parse-Application-Id"] = opts.appid or "bench"
  wrk.headers["X-Parse-Master-Key"] = opts.masterkey or "benchmaster"
  wrk.headers["Content-Type"] = "application/json"
  if opts.ids then
    for line in io.lines(opts.ids) do
      if #line > 0 then table.insert(ids, line) end
    end
  end
  local t = tid or 1
  math.randomseed(os.time() * 1000 + t)
  -- Threads start at different places of the id list.
  counter = math.floor((#ids / 8) * (t - 1))
end

function next_id()
  counter = counter + 1
  return ids[(counter % #ids) + 1]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_error == "" then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  elseif body and string.sub(body, 1, 13) == '{"results":[]' then
    -- A find that matched nothing: fast, but maybe not measuring what it should.
    empty = empty + 1
  end
end

local function json_string(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local bad, err, none = 0, "", 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    none = none + (thread:get("empty") or 0)
    local e = thread:get("first_error") or ""
    if err == "" and e ~= "" then err = e end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f,"non2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"empty":%d,"first_error":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, bad, e.connect, e.read, e.write, e.timeout,
    none, json_string(err)))
end
