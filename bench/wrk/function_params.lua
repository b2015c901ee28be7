-- function_params: POST /parse/functions/echo with {"text": "..."}; the function answers the text.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "common.lua")

function request()
  counter = counter + 1
  local body = string.format('{"text":"hello-%d-%d"}', tid or 0, counter)
  return wrk.format("POST", "/parse/functions/echo", nil, body)
end
