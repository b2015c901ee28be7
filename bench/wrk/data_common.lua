-- Shared part of bench/data_api.py's wrk scripts, on top of common.lua (loaded here).
-- More script arguments (key=value after "--"), each used by the scripts that need it:
--   words=FILE  owners=FILE  users=FILE   word list, owner ids, usernames (one a line)
--   km=N        $nearSphere distance in kilometres (sent as $maxDistance in radians)
--   box=D       side of the $within.$box box, in degrees
--   range=N     values of "n" are drawn from [0, N)
--   session=TOKEN  password=PASSWORD
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

-- Parse Server turns kilometres into radians with this radius; so does Bastion.
EARTH_RADIUS_KM = 6371.0

function url_encode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

function load_lines(path)
  local out = {}
  if path then
    for line in io.lines(path) do
      if #line > 0 then table.insert(out, line) end
    end
  end
  return out
end

function pick(list)
  return list[math.random(1, #list)]
end

-- (latitude, longitude) uniform over the sphere, as the seeded points are.
function random_point()
  return math.deg(math.asin(2 * math.random() - 1)), math.random() * 360 - 180
end

function geo_point(lat, lng)
  return string.format('{"__type":"GeoPoint","latitude":%.6f,"longitude":%.6f}', lat, lng)
end

-- GET <class collection>?where=<json>&<extra query string>
function find(class_name, where, extra)
  local path = "/parse/classes/" .. class_name .. "?where=" .. url_encode(where) .. "&limit=20"
  if extra then path = path .. "&" .. extra end
  return wrk.format("GET", path)
end

-- Requests as a client app would send them: no master key.
function as_client()
  wrk.headers["X-Parse-Master-Key"] = nil
end
