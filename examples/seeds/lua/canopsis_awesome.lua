-- Canopsis's my_awesome_work (every event) and my_awesome_beat (periodic).
local seen = 0

function process(event)
  seen = seen + 1
  event.tags.awesome = "yes"
  return event
end

function beat()
  return { { name = "awesome_seen", kind = "counter", fields = { value = seen } } }
end
