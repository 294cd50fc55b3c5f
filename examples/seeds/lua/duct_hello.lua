-- Duct's HelloWorld, flip-flop variant: the bit is kept between polls.
local bit = false

function collect(ctx)
  bit = not bit
  return { name = "hello", state = "ok", description = "Hello world!",
           fields = { value = bit and 0.0 or 1.0 } }
end
