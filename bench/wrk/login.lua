-- login: POST /parse/login as a client, cycling over the seeded users (password=...).
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

local base_init = init
function init(args)
  base_init(args)
  as_client()
  users = load_lines(opts.users)
  counter = math.random(0, #users - 1)
end

function request()
  counter = counter + 1
  local body = string.format('{"username":"%s","password":"%s"}', users[(counter % #users) + 1], opts.password)
  return wrk.format("POST", "/parse/login", nil, body)
end
