-- acl_user: the acl_master query as a user holding a few roles (X-Parse-Session-Token, no master
-- key): each object is readable by one role, so the server filters on _rperm.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
dofile(dir .. "acl_master.lua")

local base_init = init
function init(args)
  base_init(args)
  as_client()
  wrk.headers["X-Parse-Session-Token"] = opts.session
end
