#include "sim/sim_options.h"

namespace gv::sim {

namespace {
struct ScenarioName {
  Scenario scenario;
  const char* name;
};
constexpr ScenarioName kScenarios[] = {
    {Scenario::kOverlay, "overlay"},          {Scenario::kSingleSender, "single-sender"},
    {Scenario::kMultiSender, "multi-sender"}, {Scenario::kMassFailure, "mass-failure"},
    {Scenario::kChurn, "churn"},              {Scenario::kLoss, "loss"},
};
}  // namespace

std::optional<Scenario> ParseScenario(std::string_view name) {
  for (const auto& s : kScenarios) {
    if (name == s.name) return s.scenario;
  }
  return std::nullopt;
}

const char* ScenarioName(Scenario scenario) {
  for (const auto& s : kScenarios) {
    if (s.scenario == scenario) return s.name;
  }
  return "?";
}

}  // namespace gv::sim
