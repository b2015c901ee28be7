-- function: POST /parse/functions/noop with an empty body; the function answers {"ok": true}.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  return wrk.format("POST", "/parse/functions/noop", nil, "{}")
end
