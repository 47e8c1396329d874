-- Argo CD health of a mlops.dev/RetrainJob (one run, like a batch Job), from its conditions.
--   Healthy      Succeeded=True: a new version was registered; whether it was promoted is
--                a result, not a health problem (the message says which, and why)
--   Degraded     Succeeded=False or Stalled=True: the run failed, with its reason
--   Progressing  not picked up yet, or running (Reconciling=True)
local hs = {}

local function condition(ctype)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function describe(c, fallback)
  if c == nil then
    return fallback
  end
  local text = c.message
  if text == nil or text == "" then
    text = fallback
  end
  if c.reason ~= nil and c.reason ~= "" then
    return c.reason .. ": " .. text
  end
  return text
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the run"
  return hs
end

local succeeded = condition("Succeeded")
local stalled = condition("Stalled")
if (succeeded ~= nil and succeeded.status == "False")
    or (stalled ~= nil and stalled.status == "True") then
  hs.status = "Degraded"
  if succeeded ~= nil and succeeded.status == "False" then
    hs.message = describe(succeeded, "Failed")
  else
    hs.message = describe(stalled, "Failed")
  end
  return hs
end

if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
  local promoted = condition("Promoted")
  local version = ""
  if obj.status.result ~= nil and obj.status.result.version ~= nil then
    version = "version " .. tostring(obj.status.result.version) .. " registered; "
  end
  if promoted ~= nil and promoted.status == "True" then
    hs.message = version .. "promoted (" .. describe(promoted, "Better") .. ")"
  elseif promoted ~= nil then
    hs.message = version .. "not promoted (" .. describe(promoted, "NotBetter") .. ")"
  else
    hs.message = version .. (succeeded.message or "succeeded")
  end
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition("Reconciling"), "Running")
return hs
