-- query: GET <prefix>?where={"n":{"$gt":R}}&limit=20 with a random R.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  -- URL-encoded {"n":{"$gt":R}}
  local where = string.format("%%7B%%22n%%22%%3A%%7B%%22%%24gt%%22%%3A%d%%7D%%7D",
    math.random(0, opts.range - 1))
  return wrk.format("GET", opts.prefix .. "?where=" .. where .. "&limit=20")
end
