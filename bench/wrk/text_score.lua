-- text_score: as text, ranked: order=$score&keys=$score,body (the JS SDK's sortByTextScore).
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "text.lua")

function request()
  return find("BenchDoc", text_where(), "order=%24score&keys=%24score%2Cbody")
end
