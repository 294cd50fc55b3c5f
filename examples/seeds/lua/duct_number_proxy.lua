-- Duct's NumberProxy: every number received on the port, one a line, is an
-- event. The socket is vane's (plugin lua_lines); the line is the script's.
function line(text)
  local n = tonumber(text)
  if n == nil then
    ctx.warn("not a number: " .. text)
    return nil
  end
  return { name = "number", state = "ok", description = "Number: " .. n, fields = { value = n + 0.0 } }
end
