#include "membership/member_list.h"

#include <tuple>
#include <utility>

namespace gv::membership {

namespace {

Status Invalid(const std::string& what) { return Status::InvalidArgument("member record: " + what); }
Status OverLimit(const std::string& what, std::size_t count, const char* limit_name, std::size_t limit) {
  return Status::TooLarge("member record: " + what + " is " + std::to_string(count) + ", over " + limit_name + " = " +
                          std::to_string(limit));
}

}  // namespace

const char* MemberStatusName(MemberStatus status) {
  switch (status) {
    case MemberStatus::kAlive: return "alive";
    case MemberStatus::kSuspect: return "suspect";
    case MemberStatus::kFailed: return "failed";
    case MemberStatus::kLeft: return "left";
  }
  return "unknown";
}

bool ParseMemberStatus(std::string_view text, MemberStatus* out) {
  for (MemberStatus s : {MemberStatus::kAlive, MemberStatus::kSuspect, MemberStatus::kFailed, MemberStatus::kLeft}) {
    if (text == MemberStatusName(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status ValidateMemberRecord(const MemberRecord& record, const MemberRecordLimits& limits) {
  if (!record.node.valid()) return Invalid("node is node id 0");
  if (!record.reporter.valid()) return Invalid("reporter is node id 0");
  if (!IsValidNodeName(record.name)) {
    return Invalid("name '" + record.name.substr(0, 80) + "' is not 1-63 letters, digits or '-'");
  }
  for (const std::string* field : {&record.address, &record.http, &record.dns}) {
    if (field->size() > limits.max_address_bytes) {
      return OverLimit("an address", field->size(), "max_address_bytes", limits.max_address_bytes);
    }
  }
  if (record.tags.size() > limits.max_tags) return OverLimit("the tag count", record.tags.size(), "max_tags", limits.max_tags);
  std::size_t tag_bytes = 0;
  for (const auto& [key, value] : record.tags) {
    if (key.empty()) return Invalid("a tag has an empty key");
    tag_bytes += key.size() + value.size();
  }
  if (tag_bytes > limits.max_tag_bytes) return OverLimit("the tags' size", tag_bytes, "max_tag_bytes", limits.max_tag_bytes);
  if (record.epoch == 0 || record.epoch > record.incarnation) {
    return Invalid("epoch " + std::to_string(record.epoch) + " is 0 or above incarnation " +
                   std::to_string(record.incarnation));
  }
  const bool self_asserted = record.status == MemberStatus::kAlive || record.status == MemberStatus::kLeft;
  if (self_asserted && record.reporter != record.node) {
    return Invalid(std::string("status ") + MemberStatusName(record.status) + " asserted by another node");
  }
  if (!self_asserted && record.reporter == record.node) {
    return Invalid(std::string("a node reports itself ") + MemberStatusName(record.status));
  }
  return Status::Ok();
}

int CompareMemberPrecedence(const MemberRecord& a, const MemberRecord& b) {
  auto key = [](const MemberRecord& r) {
    return std::tie(r.incarnation, r.status, r.epoch, r.reporter, r.status_since_wall_ms, r.name, r.address, r.http,
                    r.dns, r.tags);
  };
  if (key(a) < key(b)) return -1;
  if (key(b) < key(a)) return 1;
  return 0;
}

MemberList::MemberList(LocalMember local, std::uint64_t start_incarnation, MemberListConfig config)
    : self_(local.id), epoch_(start_incarnation == 0 ? 1 : start_incarnation), config_(config) {
  MemberRecord record;
  record.node = local.id;
  record.name = std::move(local.name);
  record.address = std::move(local.address);
  record.http = std::move(local.http);
  record.dns = std::move(local.dns);
  record.tags = std::move(local.tags);
  record.incarnation = epoch_;
  record.epoch = epoch_;
  record.status = MemberStatus::kAlive;
  record.reporter = self_;
  members_[self_] = std::move(record);
}

const MemberRecord* MemberList::Find(NodeId node) const {
  auto it = members_.find(node);
  return it == members_.end() ? nullptr : &it->second;
}

namespace {

// Node names are DNS labels: compared without regard to ASCII case, as DNS does.
bool SameName(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

const MemberRecord* MemberList::FindByName(std::string_view name) const {
  const MemberRecord* best = nullptr;
  for (const auto& [id, record] : members_) {
    if (!SameName(record.name, name) || record.status == MemberStatus::kLeft) continue;
    if (best == nullptr || CompareMemberPrecedence(record, *best) > 0) best = &record;
  }
  return best;
}

void MemberList::Set(const MemberRecord& record, MemberOutbox& out) {
  auto it = members_.find(record.node);
  std::optional<MemberStatus> before;
  if (it != members_.end()) before = it->second.status;
  if (record.status == MemberStatus::kSuspect) {
    // The timer runs from the first suspicion at this incarnation; another
    // reporter's suspicion of the same incarnation does not extend it.
    const bool already = before == MemberStatus::kSuspect && it->second.incarnation == record.incarnation;
    if (!already) suspicion_deadlines_[record.node] = TimePoint::max();  // set by the caller
  } else {
    suspicion_deadlines_.erase(record.node);
  }
  if (before == MemberStatus::kSuspect && record.status == MemberStatus::kAlive) ++metrics_.suspicions_refuted;
  members_[record.node] = record;
  ++index_;
  out.changes.push_back(MemberChange{record.node, before, record.status});
}

bool MemberList::ReapAge(const MemberRecord& record, const LocatorClock& clock) const {
  if (record.status != MemberStatus::kFailed && record.status != MemberStatus::kLeft) return false;
  return clock.wall_ms >= record.status_since_wall_ms &&
         clock.wall_ms - record.status_since_wall_ms >= config_.reap_after_ms;
}

void MemberList::Announce(const LocatorClock& clock, MemberOutbox& out) {
  MemberRecord& record = members_.at(self_);
  if (record.status_since_wall_ms == 0) record.status_since_wall_ms = clock.wall_ms;
  out.broadcasts.push_back(record);
}

void MemberList::Leave(const LocatorClock& clock, MemberOutbox& out) {
  left_ = true;
  MemberRecord record = members_.at(self_);
  record.status = MemberStatus::kLeft;
  record.status_since_wall_ms = clock.wall_ms;
  Set(record, out);
  out.broadcasts.push_back(record);
}

void MemberList::Refute(std::uint64_t above, const LocatorClock& clock, MemberOutbox& out) {
  MemberRecord record = members_.at(self_);
  record.incarnation = above + 1;
  record.status = MemberStatus::kAlive;
  record.reporter = self_;
  record.status_since_wall_ms = clock.wall_ms;
  ++metrics_.refutations;
  Set(record, out);
  out.broadcasts.push_back(record);
}

void MemberList::PeerFailed(NodeId peer, const LocatorClock& clock, MemberOutbox& out) {
  if (peer == self_ || left_) return;
  auto it = members_.find(peer);
  // Only an alive member is suspected: a suspect one already has its timer,
  // and an unknown one has no incarnation to suspect.
  if (it == members_.end() || it->second.status != MemberStatus::kAlive) return;
  MemberRecord record = it->second;
  record.status = MemberStatus::kSuspect;
  record.reporter = self_;
  record.status_since_wall_ms = clock.wall_ms;
  ++metrics_.suspicions_raised;
  Set(record, out);
  suspicion_deadlines_[peer] = clock.now + config_.suspicion_timeout;
  out.broadcasts.push_back(record);
}

MergeOutcome MemberList::Merge(const MemberRecord& record, const LocatorClock& clock, MemberOutbox& out) {
  if (!ValidateMemberRecord(record, config_.limits).ok()) {
    ++metrics_.records_refused;
    return MergeOutcome::kRefused;
  }
  if (record.node == self_) {
    const MemberRecord& mine = members_.at(self_);
    if (left_) return MergeOutcome::kStale;
    // Anything about us ranking at or above our own record that is not our
    // record itself is news to refute: a suspicion, a failure, a left from an
    // earlier run, or an alive record of an earlier run with a later clock.
    if (CompareMemberPrecedence(record, mine) > 0) {
      Refute(std::max(record.incarnation, mine.incarnation), clock, out);
      return MergeOutcome::kRefuted;
    }
    return MergeOutcome::kStale;
  }
  auto it = members_.find(record.node);
  if (it != members_.end() && CompareMemberPrecedence(record, it->second) <= 0) return MergeOutcome::kStale;
  if (ReapAge(record, clock)) {
    // A failed/left record old enough to be reaped: it supersedes what we
    // held, so the member is gone; it is never stored (no resurrection).
    if (it != members_.end()) {
      const MemberStatus before = it->second.status;
      members_.erase(it);
      suspicion_deadlines_.erase(record.node);
      ++metrics_.reaped;
      ++index_;
      out.changes.push_back(MemberChange{record.node, before, std::nullopt});
    }
    return MergeOutcome::kStale;
  }
  if (it == members_.end() && members_.size() >= config_.max_members) {
    ++metrics_.records_refused;
    return MergeOutcome::kRefused;
  }
  Set(record, out);
  if (record.status == MemberStatus::kSuspect && suspicion_deadlines_[record.node] == TimePoint::max()) {
    suspicion_deadlines_[record.node] = clock.now + config_.suspicion_timeout;
  }
  return MergeOutcome::kApplied;
}

void MemberList::Tick(const LocatorClock& clock, MemberOutbox& out) {
  std::vector<NodeId> expired;
  for (const auto& [node, deadline] : suspicion_deadlines_) {
    if (deadline <= clock.now) expired.push_back(node);
  }
  for (NodeId node : expired) {
    MemberRecord record = members_.at(node);
    // Derived deterministically from the suspect record, so every node that
    // held the same suspicion declares the same failed record.
    record.status = MemberStatus::kFailed;
    record.status_since_wall_ms += static_cast<std::uint64_t>(ToMillis(config_.suspicion_timeout));
    ++metrics_.failures_declared;
    Set(record, out);
    if (record.reporter == self_) out.broadcasts.push_back(record);
  }
  for (auto it = members_.begin(); it != members_.end();) {
    if (it->first != self_ && ReapAge(it->second, clock)) {
      out.changes.push_back(MemberChange{it->first, it->second.status, std::nullopt});
      ++metrics_.reaped;
      ++index_;
      it = members_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace gv::membership
