-- wrk script: signed generic call events for telephony-ingest (POST /v1/calls/events), read from
-- the file named by the first script argument ("timestamp<TAB>signature<TAB>body" per line,
-- written by bench/run.sh), each a call of its own; threads start at different lines: random
-- ones, or with a second argument (the number of threads) evenly spaced, each thread then
-- holding only its share of the file, so that a file read once through never sends a call twice.
--
-- Each thread reads the file on its first request (wrk runs init() for one thread after the
-- other in its main thread, and a thread already created sends while the next one reads: with
-- 300,000 lines, seconds during which the first thread sent alone and wrk's main thread took a
-- core from the service under test). wrk also asks the first thread for a request in its main
-- thread, before any thread starts, to check it: that thread reads its share there, the others
-- in their own threads once started. So each thread, once it has read its share, creates
-- FILE.ready.<thread>: bench/run.sh takes its rates only once every thread's marker exists.
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
    math.randomseed(id + 1)  -- each thread its own start, not the same unseeded one
    index = math.random(#requests)
  end
  local ready = io.open(path .. ".ready." .. id, "w")
  if ready then
    ready:close()
  end
end

request = function()
  if not requests then
    load()
  end
  index = index % #requests + 1
  return requests[index]
end
