-- update: PUT <prefix>/<id> with a new name, cycling over the seeded ids.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  local id = next_id()
  local body = string.format('{"name":"updated-%d-%d"}', tid or 0, counter)
  return wrk.format("PUT", opts.prefix .. "/" .. id, nil, body)
end
