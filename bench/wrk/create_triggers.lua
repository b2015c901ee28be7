-- create_triggers: create.lua's POST on BenchCloud, which has a no-op beforeSave and afterSave.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "create.lua")

local base_init = init
function init(args)
  base_init(args)
  opts.prefix = "/parse/classes/BenchCloud"
end
