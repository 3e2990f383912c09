-- wrk script: a realistic JSON web-form submission, a different sender on every request, so
-- nothing is answered from the double-submit fingerprint.
local counter = 0
request = function()
  counter = counter + 1
  local phone = string.format("+336%08d", (counter * 7919 + math.random(0, 999)) % 100000000)
  local body = string.format(
    '{"name":"Jean Dupont","phone":"%s","email":"jean%d@example.com","city":"Lyon",' ..
    '"message":"I would like a quote for three rooms","utm_source":"google"}', phone, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
