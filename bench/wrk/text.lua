-- text: BenchDoc where body $text.$search.$term is a random word of the list, limit 20.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "data_common.lua")

local base_init = init
function init(args)
  base_init(args)
  words = load_lines(opts.words)
end

function text_where()
  return string.format('{"body":{"$text":{"$search":{"$term":"%s"}}}}', pick(words))
end

function request()
  return find("BenchDoc", text_where())
end
