-- related: BenchRelItem where $relatedTo the "items" relation of a random BenchOwner, limit 20.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

local base_init = init
function init(args)
  base_init(args)
  owners = load_lines(opts.owners)
end

function request()
  return find("BenchRelItem", string.format(
    '{"$relatedTo":{"object":{"__type":"Pointer","className":"BenchOwner","objectId":"%s"},"key":"items"}}',
    pick(owners)))
end
