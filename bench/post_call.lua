-- wrk script: signed generic call events for telephony-ingest (POST /v1/calls/events), read from
-- the file named by the first script argument ("timestamp<TAB>signature<TAB>body" per line,
-- written by bench/run.sh), each a call of its own; threads start at different lines: random
-- ones, or with a second argument (the number of threads) evenly spaced, so that a file read
-- once through never sends a call twice.
local requests = {}
local index = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local timestamp, signature, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", nil, {
      ["Content-Type"] = "application/json",
      ["X-LeadFlow-Timestamp"] = timestamp,
      ["X-LeadFlow-Signature"] = "sha256=" .. signature,
    }, body)
  end
  local spread = tonumber(args[2] or "")
  if spread then
    index = id * math.floor(#requests / spread)
  else
    index = math.random(#requests)
  end
end

request = function()
  index = index % #requests + 1
  return requests[index]
end
