-- Argo CD health of a mlops.dev/ModelDeployment, read from its kstatus conditions
-- (Ready, Reconciling, Stalled) and observedGeneration, which the operator always writes.
--   Healthy      Ready=True for the current generation (also while MLflow is unreachable:
--                the last resolved version keeps serving, the message says so)
--   Degraded     Stalled=True (model, version or alias missing, invalid spec), the
--                rollout hit its progress deadline, or its pods cannot start
--                (ContainerFailing: a crash loop, an image that is not there)
--   Progressing  not reconciled yet, rolling out (a canary too: the stable version serves
--                meanwhile), or waiting for capacity (Unschedulable)
--   Suspended    a canary paused (spec.rollout.paused, or no measurements to judge it by)
--   Degraded     also a canary rolled back or aborted (Stalled=True, reason RolledBack)
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
  hs.message = "Waiting for the operator to reconcile"
  return hs
end

local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local stalled = condition("Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled, "Stalled")
  return hs
end

local reconciling = condition("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  if reconciling.reason == "RolloutPaused" then
    hs.status = "Suspended"
    hs.message = describe(reconciling, "Canary paused")
    return hs
  end
  if reconciling.reason == "RolloutProgressing" then
    hs.status = "Progressing"
    hs.message = describe(reconciling, "Canary in progress")
    return hs
  end
end

local ready = condition("Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end

local available = condition("Available")
if available ~= nil and available.status == "False"
    and (available.reason == "ProgressDeadlineExceeded"
      or available.reason == "ContainerFailing") then
  hs.status = "Degraded"
  hs.message = describe(available, "Rollout stuck")
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition("Reconciling") or ready, "Reconciling")
return hs
