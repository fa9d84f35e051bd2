-- The burst of benchmarks/bot_load.py: wrk sends the deliveries bot_load_deliveries.write_wrk_requests
-- wrote (unique delivery ids, comment ids and signatures, since our bot de-duplicates on the signed body),
-- each thread its own share, and counts the answers by status. A delivery is never sent twice: a thread
-- whose share is used up stops (reported as "exhausted": the burst then ended before its duration).
-- Arguments after `--`: <requests file> <wrk threads> <webhook path>.

local threads, next_id = {}, 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file, count, path = args[1], tonumber(args[2]), args[3]
  pool, sent, statuses, exhausted = {}, 0, {}, 0
  local input = assert(io.open(file, "rb"))
  local index = 0
  while true do
    local delivery = input:read("*l")
    if not delivery then break end
    local signature, body = input:read("*l"), input:read("*l")
    if index % count == id then
      pool[#pool + 1] = wrk.format("POST", path, {
        ["X-GitHub-Event"] = "issue_comment", ["X-GitHub-Delivery"] = delivery,
        ["X-Hub-Signature-256"] = signature, ["Content-Type"] = "application/json",
      }, body)
    end
    index = index + 1
  end
  input:close()
end

function request()
  sent = sent + 1
  if sent > #pool then
    exhausted = 1
    wrk.thread:stop()
    return pool[#pool]  -- never answered: the thread is stopping
  end
  return pool[sent]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total, used_up = {}, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
    used_up = used_up + thread:get("exhausted")
  end
  local parts = {}
  for status, n in pairs(total) do parts[#parts + 1] = string.format('"%d": %d', status, n) end
  local errors = summary.errors
  io.write(string.format(
    'WRK-RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "statuses": {%s}, "errors": {"connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d}, "exhausted_threads": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, table.concat(parts, ", "), errors.connect, errors.read,
    errors.write, errors.status, errors.timeout, used_up))
end
