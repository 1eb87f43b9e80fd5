-- One load scenario for wrk, chosen by the first script argument:
--   wrk ... -s bench/wrk/scenario.lua <url> -- MODE RUN API_KEY CUSTOMER_PREFIX CUSTOMERS [FIRST_PK]
-- MODE: reference | get | deduct | deposit | freeze_consume | deduct_refund | claim_release. Customers are picked at random
-- among CUSTOMER_PREFIX0 .. CUSTOMER_PREFIX(CUSTOMERS-1); every charge and deposit carries an
-- id unique to the run, thread and request. `done` prints one RESULT line of JSON.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  mode, run, key, prefix = args[1], args[2], args[3], args[4]
  customers, first_pk = tonumber(args[5]), tonumber(args[6] or "0")
  sent, failures, settled, frozen, claimed = 0, 0, 0, {}, {}
  math.randomseed(thread_id * 7919 + os.time())
  wrk.headers["Content-Type"] = "application/json"
  if key ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. key
  end
end

local function pick() return math.random(0, customers - 1) end

local function post(path, body) return wrk.format("POST", path, nil, body) end

function request()
  sent = sent + 1
  local ref = run .. "-" .. thread_id .. "-" .. sent
  local customer = prefix .. pick()
  if mode == "reference" then
    return wrk.format("GET", "/bench/reference/" .. (first_pk + pick()))
  elseif mode == "get" then
    return wrk.format("GET", "/v1/customers/" .. customer)
  elseif mode == "deduct" then
    return post("/v1/billing/deduct", string.format(
      '{"customer_id":"%s","transaction_id":"%s","amount":1}', customer, ref))
  elseif mode == "deposit" then
    return post("/v1/customers/deposit", string.format(
      '{"customer_id":"%s","idempotency_key":"%s","amount":1}', customer, ref))
  elseif mode == "freeze_consume" then
    -- A consume is sent only for a freeze whose answer has arrived.
    local held = table.remove(frozen, 1)
    if held then
      return post("/v1/billing/consume", string.format(
        '{"transaction_id":"%s","actual_amount":1}', held))
    end
    return post("/v1/billing/freeze", string.format(
      '{"customer_id":"%s","transaction_id":"%s","amount":2}', customer, ref))
  elseif mode == "deduct_refund" then
    -- A refund is sent only for a deduct whose answer has arrived.
    local charged = table.remove(frozen, 1)
    if charged then
      return post("/v1/billing/refund", string.format(
        '{"transaction_id":"%s","refund_id":"%s-r"}', charged, charged))
    end
    return post("/v1/billing/deduct", string.format(
      '{"customer_id":"%s","transaction_id":"%s","amount":2}', customer, ref))
  elseif mode == "claim_release" then
    -- A release is sent only for a claim whose answer has arrived; the resource names its
    -- customer ("<customer>|<ref>"), so the release needs nothing else.
    local held = table.remove(frozen, 1)
    if held then
      return post("/v1/slot/release", string.format(
        '{"customer_id":"%s","wallet":"jobs","resource_id":"%s"}', held:match("^(.-)|"), held))
    end
    local resource = customer .. "|" .. ref
    claimed[resource] = true
    return post("/v1/slot/claim", string.format(
      '{"customer_id":"%s","wallet":"jobs","resource_id":"%s"}', customer, resource))
  end
  error("unknown mode " .. mode)
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  elseif mode == "deduct_refund" then
    if body:find('"deducted_amount"', 1, true) then
      table.insert(frozen, body:match('"transaction_id":"([^"]+)"'))
    else
      settled = settled + 1
    end
  elseif mode == "claim_release" then
    local resource = body:match('"resource_id":"([^"]+)"')
    if claimed[resource] then
      claimed[resource] = nil
      table.insert(frozen, resource)
    else
      settled = settled + 1
    end
  elseif mode == "freeze_consume" then
    if body:find('"frozen_amount"', 1, true) then
      table.insert(frozen, body:match('"transaction_id":"([^"]+)"'))
    else
      settled = settled + 1
    end
  end
end

function done(summary, latency, requests)
  local failed, paired = 0, 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    paired = paired + thread:get("settled")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"failures":%d,' ..
    '"pairs":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    failed, paired, e.connect + e.read + e.write + e.timeout))
end
