-- create_plain: create.lua's POST on BenchPlain, a class without cloud triggers.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "create.lua")

local base_init = init
function init(args)
  base_init(args)
  opts.prefix = "/parse/classes/BenchPlain"
end
