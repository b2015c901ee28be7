-- get: GET <prefix>/<id>, cycling over the seeded ids.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  return wrk.format("GET", opts.prefix .. "/" .. next_id())
end
