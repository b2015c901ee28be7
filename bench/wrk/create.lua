-- create: POST <prefix> with a new object each time.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  counter = counter + 1
  local body = string.format('{"n":%d,"name":"created-%d-%d","tags":["bench","t%d"]}',
    math.random(0, opts.range - 1), tid or 0, counter, counter % 10)
  return wrk.format("POST", opts.prefix, nil, body)
end
