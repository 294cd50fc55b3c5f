-- Duct's ProcessCount: `ps -e` with a timeout, one line per process.
function collect(ctx)
  local out = ctx.exec({ "/bin/ps", "-e" }, 10)
  local count = -1 -- the header line
  for _ in out.stdout:gmatch("[^\n]+") do count = count + 1 end
  return { name = "process_count", state = "ok",
           description = "Process count " .. count, fields = { value = count } }
end
