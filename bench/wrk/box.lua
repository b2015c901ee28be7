-- box: BenchPlace where location $within.$box of a random box box=D degrees wide, limit 20.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

function request()
  local side = tonumber(opts.box or "5")
  local south = math.random() * (160 - side) - 80
  local west = math.random() * (360 - side) - 180
  return find("BenchPlace", string.format('{"location":{"$within":{"$box":[%s,%s]}}}',
    geo_point(south, west), geo_point(south + side, west + side)))
end
