-- signup: POST /parse/users as a client with a fresh username each time (password=...).
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

local base_init = init
function init(args)
  base_init(args)
  as_client()
  -- Unique across threads and across wrk runs (warm-up, retries: each starts in a later second).
  nonce = string.format("%d-%d-%d", os.time(), tid or 0, math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  local body = string.format('{"username":"bench-su-%s-%d","password":"%s"}', nonce, counter, opts.password)
  return wrk.format("POST", "/parse/users", nil, body)
end
