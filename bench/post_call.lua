-- wrk script: signed generic call events for telephony-ingest (POST /v1/calls/events), read from
-- the file named by the first script argument ("timestamp<TAB>signature<TAB>body" per line,
-- written by bench/run.sh), each a call of its own; threads start at different lines: random
-- ones, or with a second argument (the number of threads) evenly spaced, each thread then
-- holding only its share of the file, so that a file read once through never sends a call twice.
--
-- Each thread reads the file on its first request, in its own thread, all threads at once.
-- wrk runs init() for one thread after the other in its main thread, and a thread already
-- created sends while the next one reads: with the file read there, the first thread sent alone
-- for as long as the others read (seconds for 300,000 lines), while wrk's main thread took a
-- core from the service under test, and those requests counted in wrk's total but not in its
-- time. Read here, every thread waits the same read before its first request, whatever the
-- server.
local path
local spread
local requests
local index = 0
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  path = args[1]
  spread = tonumber(args[2] or "")
end

local function load()
  requests = {}
  local first, last = 1, math.huge
  if spread then
    local count = 0
    for _ in io.lines(path) do
      count = count + 1
    end
    local share = math.floor(count / spread)
    first = id * share + 1
    last = first + share - 1
  end
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if n > last then
      break
    end
    if n >= first then
      local timestamp, signature, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-LeadFlow-Timestamp"] = timestamp,
        ["X-LeadFlow-Signature"] = "sha256=" .. signature,
      }, body)
    end
  end
  if not spread then
    index = math.random(#requests)
  end
end

request = function()
  if not requests then
    load()
  end
  index = index % #requests + 1
  return requests[index]
end
