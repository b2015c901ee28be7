-- near: BenchPlace where location $nearSphere a random point, $maxDistance (radians) of km=N,
-- limit 20 (sorted by distance).  $maxDistance rather than $maxDistanceInKilometers: Parse Server
-- on PostgreSQL ignores the latter and would sort all points.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

function request()
  local lat, lng = random_point()
  local radians = tonumber(opts.km or "300") / EARTH_RADIUS_KM
  return find("BenchPlace", string.format('{"location":{"$nearSphere":%s,"$maxDistance":%.9f}}',
    geo_point(lat, lng), radians))
end
