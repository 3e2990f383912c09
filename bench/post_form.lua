-- wrk script: a realistic JSON web-form submission, a different sender on every request of every
-- thread, so nothing is answered from the double-submit fingerprint.
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local counter = 0
request = function()
  counter = counter + 1
  local n = (thread_id or 0) * 10000000 + counter
  -- +33 61x xx xx xx: valid French mobile numbers for libphonenumber
  local phone = string.format("+3361%07d", n % 10000000)
  local body = string.format(
    '{"name":"Jean Dupont","phone":"%s","email":"jean%d@example.com","city":"Lyon",' ..
    '"message":"I would like a quote for three rooms","utm_source":"google"}', phone, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
