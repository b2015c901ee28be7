-- acl_master: BenchSecret where n >= random R, limit 20, with the master key (no ACL filter).
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

function acl_request()
  return find("BenchSecret", string.format('{"n":{"$gte":%d}}', math.random(0, opts.range - 1)))
end

request = acl_request
