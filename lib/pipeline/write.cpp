// write → confirm, and crash recovery: the exactly-once protocol of DESIGN §2. For each batch,
// (1) intents are committed, (2) the batch is sent, (3) confirmations (ID map, statuses, audit) are
// committed in one transaction. Intents left by a crash are resolved through the idempotency key
// before anything new is sent.
#include <algorithm>
#include <deque>
#include <map>
#include <random>

#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/problem.hpp"
#include "crmmigrate/core/time.hpp"
#include "crash_point.hpp"
#include "pipeline_internal.hpp"
#include "state_internal.hpp"

namespace cmg {

namespace json = boost::json;
using state::from_array;
using state::get_json;
using state::put_json;
using state::status_of;
using state::str;
using state::to_array;
using store::key_of;
using store::Txn;

// ---- write → confirm ----

namespace {

struct PendingOp {
  std::string primary;
  json::object plan;
  WriteOp op;
  int attempts = 0;           // sends so far
  bool unknown = false;       // the last send had no usable reply: settle it before sending again
  std::string last_error;     // of the last transient failure
};

}  // namespace

Result<StepResult> Migration::Impl::write_object(const ObjectConfig& oc, RunCtx& ctx) {
  // Primaries whose group is planned, in key order.
  std::vector<std::pair<std::string, json::object>> todo;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) -> Status {
    std::vector<std::string> primaries;
    CMG_RETURN_IF_ERROR(t.scan(state::kRecords, key_of({oc.name, ""}), [&](std::string_view k, std::string_view v) {
      auto r = state::parse_object(v);
      if (r && status_of(*r) == "planned") {
        std::string sid(store::split_key(k)[1]);
        if (str(*r, "p") == sid) primaries.push_back(sid);
      }
      return true;
    }));
    for (const auto& p : primaries) {
      CMG_ASSIGN_OR_RETURN(auto plan, state::load_plan(t, oc.name, p));
      if (plan) todo.emplace_back(p, std::move(*plan));
    }
    return Status::ok();
  }));
  if (todo.empty()) return StepResult::kContinue;

  const std::size_t batch_size = std::max<std::size_t>(1, std::min<std::size_t>(cfg.batch_size, static_cast<std::size_t>(std::max(1, dest->quota().max_batch))));
  std::int64_t total = static_cast<std::int64_t>(todo.size()), done = 0;
  std::mt19937_64 jitter(std::hash<std::string>{}(ctx.run_id));

  // Confirms one group: statuses, ID map, dedup index, audit, queue resolution — one transaction
  // for the whole batch (the caller's).
  auto confirm = [&](Txn& t, const std::string& primary, const json::object& plan, const std::string& dest_id,
                     const std::string& action, int status, int retries, bool recovered = false) -> Status {
    std::string dobj = str(plan, "o");
    auto members = from_array(plan.if_contains("members"));
    for (const auto& mem : members) {
      std::string k = key_of({oc.name, mem});
      std::string s = action == "skip" ? "skipped" : (action == "create" && mem == primary) ? "written" : "merged";
      // A delta update keeps the record's outcome (a written record stays written).
      if (const auto* keep = plan.if_contains("keep_status"); keep && keep->is_string()) s = std::string(keep->get_string());
      CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, k,
                                   json::object{{"s", s}, {"d", dest_id}, {"o", dobj}, {"p", primary},
                                                {"t", state::now_ms()}}));
      CMG_RETURN_IF_ERROR(t.put(state::kIdmap, k, dest_id));
      json::object ev{{"action", s}, {"object", oc.name}, {"source_id", mem}, {"destination_id", dest_id},
                      {"destination_object", dobj}, {"run", ctx.run_id}, {"batch", ctx.batch_seq}};
      if (const auto* lb = plan.if_contains("linked_by"); lb && lb->is_object() && lb->get_object().contains(mem))
        ev["key"] = lb->get_object().at(mem);
      else if (!str(plan, "key").empty() && action != "create")
        ev["key"] = plan.at("key");
      if (mem != primary) ev["merged_into"] = primary;
      if (plan.contains("rule")) ev["rule"] = plan.at("rule");
      if (plan.contains("rules_applied")) ev["rules_applied"] = plan.at("rules_applied");
      // When each step of the pipeline handled the record (the console's per-record timeline).
      if (const auto* st = plan.if_contains("stages"); st && st->is_object()) ev["stages"] = *st;
      ev["translations"] = plan.at("translations");
      ev["defaults"] = plan.at("defaults");
      ev["dropped"] = plan.at("dropped");
      if (mem == primary && plan.contains("fields")) ev["sent"] = plan.at("fields");
      if (action == "skip") ev["reason"] = plan.at("reason");
      ev["status"] = status;
      ev["retries"] = retries;
      if (recovered) ev["recovered"] = true;  // applied without a reply; found by its idempotency key
      CMG_ASSIGN_OR_RETURN(auto qi, get_json(t, state::kQueue, k));
      if (qi && str(*qi, "status") != "resolved" && str(*qi, "status") != "skipped") {
        (*qi)["status"] = "resolved";
        qi->erase("reprocessing");
        (*qi)["resolved_at"] = format_timestamp_ms(state::now_ms());
        (*qi)["destination_id"] = dest_id;
        CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, k, *qi));
        ev["resolved_queue_item"] = oc.name + "/" + mem;
      }
      CMG_RETURN_IF_ERROR(state::append_audit(t, std::move(ev)));
    }
    CMG_RETURN_IF_ERROR(t.put(state::kIdmapRev, key_of({dobj, dest_id}), key_of({oc.name, primary})));
    if (action == "create" && !oc.dedup_none) {
      // The new record joins the dedup index so later passes (reprocess, delta) match it.
      json::object fields = plan.at("fields").get_object();
      auto keys = dedup_keys(oc, fields, str(plan, "idempotency_key"));
      json::array ka;
      for (std::size_t lvl = 0; lvl < keys.size(); ++lvl) {
        ka.push_back(to_array(keys[lvl]));
        for (const auto& v : keys[lvl])
          CMG_RETURN_IF_ERROR(t.put(state::kDedup, key_of({oc.name, std::to_string(lvl), v, dest_id}), ""));
      }
      CMG_RETURN_IF_ERROR(put_json(t, state::kDestKeys, key_of({oc.name, dest_id}),
                                   json::object{{"k", std::move(ka)}, {"o", dobj}, {"u", state::now_ms()}}));
    }
    CMG_RETURN_IF_ERROR(t.del(state::kIntents, key_of({oc.name, primary})).status());
    if (action != "skip" && action != "none") {
      json::object p2 = plan;
      p2["done"] = true;
      p2["dest_id"] = dest_id;
      CMG_RETURN_IF_ERROR(put_json(t, state::kPlans, key_of({oc.name, primary}), p2));
    }
    return Status::ok();
  };

  auto record_outcome = [&](bool failure) {
    ctx.window.push_back(failure);
    while (ctx.window.size() > cfg.halt_window) ctx.window.pop_front();
  };
  auto over_threshold = [&]() {
    std::size_t failures = static_cast<std::size_t>(std::count(ctx.window.begin(), ctx.window.end(), true));
    // Judge only once the window holds a meaningful sample.
    std::size_t min_sample = std::min<std::size_t>(cfg.halt_window, 20);
    return ctx.window.size() >= min_sample &&
           static_cast<double>(failures) / static_cast<double>(ctx.window.size()) > cfg.halt_max_error_rate;
  };

  RetryingDestination& d = retrying_dest();
  const RetryPolicy& policy = d.policy();
  const ObjectSchema* dos = nullptr;  // destination object of the current batch

  // Gives up on `p` (a failure for the halt): its members are queued with `reason`.
  auto give_up = [&](Txn& t, const PendingOp& p, Reason reason, std::vector<Problem> ps, json::object extra) -> Status {
    CMG_RETURN_IF_ERROR(t.del(state::kIntents, key_of({oc.name, p.primary})).status());
    if (ps.empty()) ps.push_back({reason, "", "", "write", p.last_error, ""});
    extra["destination_object"] = str(p.plan, "o");
    if (p.op.kind == WriteOp::Kind::kUpdate) extra["destination_id"] = p.op.id;
    if (const auto* st = p.plan.if_contains("stages"); st && st->is_object()) extra["stages"] = *st;
    for (const auto& mem : from_array(p.plan.if_contains("members")))
      CMG_RETURN_IF_ERROR(enqueue(t, oc.name, mem, ps, "write", extra, &ctx));
    return Status::ok();
  };

  // Settles, before a batch is sent, the ops whose last send had no usable reply and the ops out of
  // attempts. An upsert with an unknown outcome is looked up by its idempotency key: found means it
  // was applied (confirmed now, never created again); not found means it was not (sent again). An
  // update is idempotent and is simply sent again. Removes the settled ops from `batch`.
  auto settle = [&](std::vector<PendingOp>& batch, const std::string& dobj) -> Status {
    std::vector<std::string> keys;
    for (const auto& p : batch)
      if (p.unknown && p.op.kind == WriteOp::Kind::kUpsert && dos && !dos->id_property.empty())
        keys.push_back(p.op.idempotency_key);
    std::map<std::string, std::string> found;  // idempotency key -> destination id
    if (!keys.empty()) {
      CMG_ASSIGN_OR_RETURN(auto recs, d.find(dobj, dos->id_property, keys));
      for (const auto& r : recs)
        if (const auto* v = r.fields.if_contains(dos->id_property)) found.emplace(value_to_text(*v), r.id);
    }
    enum class Fate { kSend, kConfirmed, kExhausted, kUnresolvable };
    std::vector<Fate> fate(batch.size(), Fate::kSend);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& p = batch[i];
      bool blind = p.unknown && p.op.kind == WriteOp::Kind::kUpsert && (!dos || dos->id_property.empty());
      if (p.unknown && p.op.kind == WriteOp::Kind::kUpsert && found.count(p.op.idempotency_key)) fate[i] = Fate::kConfirmed;
      else if (blind) fate[i] = Fate::kUnresolvable;
      else if (p.attempts >= policy.max_attempts) fate[i] = Fate::kExhausted;
    }
    if (std::all_of(fate.begin(), fate.end(), [](Fate f) { return f == Fate::kSend; })) return Status::ok();
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const auto& p = batch[i];
        switch (fate[i]) {
          case Fate::kSend: break;
          case Fate::kConfirmed:
            CMG_RETURN_IF_ERROR(confirm(t, p.primary, p.plan, found.at(p.op.idempotency_key), str(p.plan, "action"),
                                        200, p.attempts - 1, true));
            break;
          case Fate::kExhausted:
            CMG_RETURN_IF_ERROR(give_up(t, p, Reason::kRetriesExhausted,
                                        {{Reason::kRetriesExhausted, "", "", "write",
                                          "gave up after " + std::to_string(p.attempts) + " attempts: " + p.last_error, ""}},
                                        {}));
            break;
          case Fate::kUnresolvable:
            CMG_RETURN_IF_ERROR(give_up(t, p, Reason::kRetriesExhausted,
                                        {{Reason::kRetriesExhausted, "", "", "write",
                                          "the destination may or may not have applied this write (" + p.last_error +
                                              ") and " + dobj +
                                              " has no idempotency key to look it up by; check the destination "
                                              "before reprocessing",
                                          ""}},
                                        {}));
            break;
        }
      }
      return Status::ok();
    }));
    std::vector<PendingOp> rest;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (fate[i] == Fate::kSend) {
        batch[i].unknown = false;
        rest.push_back(std::move(batch[i]));
        continue;
      }
      record_outcome(fate[i] != Fate::kConfirmed);
      if (fate[i] == Fate::kConfirmed)
        ctx.written_this_call += static_cast<std::int64_t>(from_array(batch[i].plan.if_contains("members")).size());
      ++done;
    }
    batch = std::move(rest);
    return Status::ok();
  };

  std::size_t pos = 0;
  std::deque<PendingOp> retry;
  while (pos < todo.size() || !retry.empty()) {
    if (ctx.opts->cancelled && ctx.opts->cancelled()) return StepResult::kCancelled;
    if (ctx.opts->limit && ctx.written_this_call >= *ctx.opts->limit) return StepResult::kLimit;
    // Assemble a batch of operations on one destination object.
    std::vector<PendingOp> batch;
    std::string dobj;
    std::vector<std::pair<std::string, json::object>> no_send;
    while (!retry.empty() && batch.size() < batch_size) {
      if (dobj.empty()) dobj = str(retry.front().plan, "o");
      if (str(retry.front().plan, "o") != dobj) break;
      batch.push_back(std::move(retry.front()));
      retry.pop_front();
    }
    while (pos < todo.size() && batch.size() < batch_size) {
      auto& [primary, plan] = todo[pos];
      std::string action = str(plan, "action");
      if (action == "none" || action == "skip") {
        no_send.emplace_back(primary, plan);
        ++pos;
        continue;
      }
      if (!dobj.empty() && str(plan, "o") != dobj) break;
      dobj = str(plan, "o");
      PendingOp p;
      p.primary = primary;
      p.plan = plan;
      if (action == "create") {
        p.op.kind = WriteOp::Kind::kUpsert;
        p.op.idempotency_key = str(plan, "idempotency_key");
      } else {
        p.op.kind = WriteOp::Kind::kUpdate;
        p.op.id = str(plan, "dest_id");
      }
      p.op.fields = plan.at("fields").get_object();
      batch.push_back(std::move(p));
      ++pos;
      if (ctx.opts->limit && ctx.written_this_call + static_cast<std::int64_t>(batch.size()) >= *ctx.opts->limit) break;
    }
    if (!no_send.empty()) {
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        for (auto& [primary, plan] : no_send)
          CMG_RETURN_IF_ERROR(confirm(t, primary, plan, str(plan, "dest_id"), str(plan, "action"), 0, 0));
        return Status::ok();
      }));
      for (auto& [primary, plan] : no_send)
        ctx.written_this_call += static_cast<std::int64_t>(from_array(plan.if_contains("members")).size());
      done += static_cast<std::int64_t>(no_send.size());
    }
    if (batch.empty()) continue;
    dos = dst_schema->object(dobj);
    CMG_RETURN_IF_ERROR(settle(batch, dobj));
    if (batch.empty()) {
      if (over_threshold()) goto halted;
      continue;
    }
    ++ctx.batch_seq;
    // (1) intents, committed before anything is sent (again, for a retry: same key, new batch).
    crash_point("before_intents");
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      for (const auto& p : batch)
        CMG_RETURN_IF_ERROR(put_json(
            t, state::kIntents, key_of({oc.name, p.primary}),
            json::object{{"batch", ctx.batch_seq}, {"run", ctx.run_id}, {"key", p.op.idempotency_key},
                         {"kind", p.op.kind == WriteOp::Kind::kUpsert ? "upsert" : "update"}, {"dest_object", dobj},
                         {"dest_id", p.op.id}, {"at", state::now_ms()}}));
      return Status::ok();
    }));
    // (2) send, through the Retry-After gate.
    std::vector<WriteOp> ops;
    for (const auto& p : batch) ops.push_back(p.op);
    crash_point("after_intents");
    auto results = d.write(dobj, ops);
    crash_point("after_send");
    if (!results.is_ok()) {
      // The whole call failed and the connector cannot say how far it got: every op has an
      // unknown outcome. The intents stay; the ops are settled before they are sent again.
      std::vector<WriteResult> unknown(batch.size());
      for (auto& r : unknown) {
        r.retryable = true;
        r.outcome_unknown = true;
        r.message = results.status().message();
      }
      results = std::move(unknown);
    }
    {
      auto& res = *results;
      // Env::write may run the body again (map growth), so the body only decides; the batch is
      // changed, and outcomes counted, after the commit.
      enum class Next { kConfirmed, kReroute, kRetry, kFailed };
      std::vector<Next> next(batch.size(), Next::kFailed);
      CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const auto& p = batch[i];
          const WriteResult& r = i < res.size() ? res[i] : WriteResult{};
          if (r.outcome != WriteResult::Outcome::kFailed) {
            std::string action = str(p.plan, "action");
            CMG_RETURN_IF_ERROR(confirm(t, p.primary, p.plan, r.id, action, r.status, p.attempts));
            next[i] = Next::kConfirmed;
            continue;
          }
          if (r.status == 409 && !r.existing_id.empty() && p.op.kind == WriteOp::Kind::kUpsert) {
            CMG_RETURN_IF_ERROR(t.del(state::kIntents, key_of({oc.name, p.primary})).status());
            next[i] = Next::kReroute;
            continue;
          }
          if (r.retryable) {
            // Transient: not a failure (DESIGN §1) unless it is still failing after the last attempt
            // (settle() decides that, after looking the record up when the outcome is unknown).
            next[i] = Next::kRetry;
            continue;
          }
          std::vector<Problem> ps;
          for (const auto& fe : r.errors)
            ps.push_back({Reason::kRejectedByDestination, fe.field, fe.value, fe.code, fe.message, ""});
          if (ps.empty()) ps.push_back({Reason::kRejectedByDestination, "", "", std::to_string(r.status), r.message, ""});
          CMG_RETURN_IF_ERROR(give_up(t, p, Reason::kRejectedByDestination, std::move(ps),
                                      json::object{{"destination_status", r.status}}));
          next[i] = Next::kFailed;
        }
        return Status::ok();
      }));
      std::vector<PendingOp> reroute;  // 409: the value exists — route back through dedup as a merge
      int retry_attempts = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& p = batch[i];
        const WriteResult& r = i < res.size() ? res[i] : WriteResult{};
        switch (next[i]) {
          case Next::kConfirmed: record_outcome(false); break;
          case Next::kFailed: record_outcome(true); break;
          case Next::kRetry:
            ++p.attempts;
            p.unknown = p.unknown || r.outcome_unknown;
            p.last_error = r.message.empty() ? "status " + std::to_string(r.status) : r.message;
            retry_attempts = std::max(retry_attempts, p.attempts);
            retry.push_back(std::move(p));
            break;
          case Next::kReroute:
            p.plan["action"] = "update";
            p.plan["dest_id"] = r.existing_id;
            p.plan["rerouted"] = "409 " + r.message;
            reroute.push_back(std::move(p));
            break;
        }
      }
      // Back off before the retries; d.write() has already closed the gate for any Retry-After.
      if (retry_attempts > 0) d.defer(backoff_ms(policy, retry_attempts, jitter()));
      crash_point("after_confirm");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (next[i] == Next::kConfirmed)
          ctx.written_this_call += static_cast<std::int64_t>(from_array(batch[i].plan.if_contains("members")).size());
        if (next[i] == Next::kConfirmed || next[i] == Next::kFailed) ++done;
      }
      // Queues every member of a rerouted plan with `problems` (and the plan's stages).
      auto queue_rerouted = [&](const PendingOp& p, const std::vector<Problem>& problems, json::object extra) {
        if (const auto* st = p.plan.if_contains("stages"); st && st->is_object()) extra["stages"] = *st;
        return env->write([&](Txn& t) -> Status {
          for (const auto& mem : from_array(p.plan.if_contains("members")))
            CMG_RETURN_IF_ERROR(enqueue(t, oc.name, mem, problems, "write", extra, &ctx));
          return Status::ok();
        });
      };
      // A 409 means the destination already holds the record: read it and merge instead.
      for (auto& p : reroute) {
        CMG_ASSIGN_OR_RETURN(auto recs, d.read(dobj, {str(p.plan, "dest_id")}));
        if (recs.empty() || !recs[0]) continue;
        const ObjectSchema* os = dst_schema->object(dobj);
        // Unless the record holding the value carries another source record's external id: it is
        // then a different record (dedup refuses such a match for that reason, the external-id
        // veto), so it is not merged into; a reviewer decides. (The same id is this record's own
        // earlier write, e.g. after a lost reply: merged.)
        const std::string key = str(p.plan, "idempotency_key");
        const json::value* held = os && !os->id_property.empty() ? recs[0]->fields.if_contains(os->id_property) : nullptr;
        if (held && !value_is_blank(*held) && !key.empty() && value_to_text(*held) != key) {
          Problem pr{Reason::kMergeConflict, os->id_property, key, "dedup:external_id",
                     "the destination refused the create (409: " + str(p.plan, "rerouted").substr(4) + "); record " +
                         str(p.plan, "dest_id") + ", which holds that value, has " + os->id_property + " '" +
                         value_to_text(*held) + "' (another source record): not merged",
                     ""};
          CMG_RETURN_IF_ERROR(queue_rerouted(p, {pr}, json::object{{"dest_id", str(p.plan, "dest_id")}}));
          continue;
        }
        Record folded;
        folded.fields = p.plan.at("fields").get_object();
        if (os && !os->id_property.empty()) folded.fields.erase(os->id_property);
        auto rule = merge_rule_for(oc, false);
        MergeOutcome mo;
        CMG_RETURN_IF_ERROR(rule->merge({folded, *recs[0]}, &mo));
        if (mo.kind != MergeOutcome::Kind::kMerged) {
          std::vector<Problem> ps;
          for (const auto& c : mo.conflicts)
            ps.push_back({Reason::kMergeConflict, c.field, value_to_text(c.source_value), "merge",
                          "destination already has this record (409); source '" + value_to_text(c.source_value) +
                              "' vs destination '" + value_to_text(c.destination_value) + "'",
                          ""});
          if (ps.empty()) ps.push_back({Reason::kMergeConflict, "", "", "merge", mo.reason, ""});
          CMG_RETURN_IF_ERROR(queue_rerouted(p, ps, {}));
          continue;
        }
        p.plan["fields"] = mo.changes;
        p.plan["rule"] = merge_strategy_name(oc.merge_default);
        p.op = WriteOp{};
        p.op.kind = WriteOp::Kind::kUpdate;
        p.op.id = str(p.plan, "dest_id");
        p.op.fields = mo.changes;
        retry.push_back(std::move(p));
      }
    }
    if (ctx.opts->progress) ctx.opts->progress({oc.name, "write", done, total});
    if (over_threshold()) goto halted;
  }
  return StepResult::kContinue;

halted : {
  std::size_t failures = static_cast<std::size_t>(std::count(ctx.window.begin(), ctx.window.end(), true));
  std::string msg = oc.name + ": " + std::to_string(failures) + " of the last " + std::to_string(ctx.window.size()) +
                    " writes failed (threshold " + std::to_string(static_cast<int>(cfg.halt_max_error_rate * 100)) +
                    " %); run --ack-halt --reviewer NAME to resume";
  raise_alert(&ctx, {"halt", oc.name, msg});
  CMG_RETURN_IF_ERROR(set_run_state("halted", msg));
  return StepResult::kHalted;
}
}

// ---- crash recovery ----

Status Migration::Impl::resolve_intents(RunCtx& ctx) {
  std::vector<std::pair<std::string, json::object>> intents;
  CMG_RETURN_IF_ERROR(env->read([&](Txn& t) {
    return t.scan(state::kIntents, "", [&](std::string_view k, std::string_view v) {
      auto o = state::parse_object(v);
      if (o) intents.emplace_back(std::string(k), std::move(*o));
      return true;
    });
  }));
  for (auto& [intent_key, intent] : intents) {
    const std::string& k = intent_key;  // a plain reference: structured bindings cannot be captured in C++17
    auto parts = store::split_key(k);
    std::string object(parts[0]), primary(parts[1]);
    const ObjectConfig* oc = cfg.object(object);
    std::string dobj = str(intent, "dest_object");
    std::optional<std::string> found;
    bool unresolvable = false;  // an upsert the destination cannot look up: sending it again could duplicate it
    if (str(intent, "kind") == "upsert") {
      const ObjectSchema* os = dst_schema->object(dobj);
      if (os && !os->id_property.empty()) {
        CMG_ASSIGN_OR_RETURN(auto recs, retrying_dest().find(dobj, os->id_property, {str(intent, "key")}));
        if (!recs.empty()) found = recs.front().id;
      } else {
        unresolvable = true;
      }
    }
    CMG_RETURN_IF_ERROR(env->write([&](Txn& t) -> Status {
      CMG_ASSIGN_OR_RETURN(auto plan, state::load_plan(t, object, primary));
      CMG_ASSIGN_OR_RETURN(auto rec, get_json(t, state::kRecords, key_of({object, primary})));
      if (unresolvable && plan && oc && rec && status_of(*rec) == "planned") {
        json::object extra{{"destination_object", dobj}};
        if (const auto* st = plan->if_contains("stages"); st && st->is_object()) extra["stages"] = *st;
        for (const auto& mem : from_array(plan->if_contains("members")))
          CMG_RETURN_IF_ERROR(enqueue(t, object, mem,
                                      {{Reason::kRetriesExhausted, "", "", "write",
                                        "interrupted while writing to " + dobj +
                                            ", which has no idempotency key to look the record up by; check the "
                                            "destination before reprocessing",
                                        ""}},
                                      "write", extra, &ctx));
        return t.del(state::kIntents, k).status();
      }
      if (!found || !plan || !oc || !rec || status_of(*rec) != "planned") {
        // Not applied (or an update, which is idempotent): drop the intent; the planned record
        // is sent again by the normal write path.
        return t.del(state::kIntents, k).status();
      }
      // Applied but never confirmed: confirm now, exactly as the lost reply would have.
      std::vector<std::string> members = from_array(plan->if_contains("members"));
      for (const auto& mem : members) {
        std::string mk = key_of({object, mem});
        std::string s = mem == primary ? "written" : "merged";
        CMG_RETURN_IF_ERROR(put_json(t, state::kRecords, mk,
                                     json::object{{"s", s}, {"d", *found}, {"o", dobj}, {"p", primary}, {"t", state::now_ms()}}));
        CMG_RETURN_IF_ERROR(t.put(state::kIdmap, mk, *found));
        CMG_RETURN_IF_ERROR(state::append_audit(
            t, json::object{{"action", s}, {"object", object}, {"source_id", mem}, {"destination_id", *found},
                            {"destination_object", dobj}, {"run", ctx.run_id}, {"recovered", true},
                            {"key", "idempotency_key"}, {"sent", mem == primary ? plan->at("fields") : json::value()},
                            {"translations", plan->at("translations")}, {"defaults", plan->at("defaults")},
                            {"dropped", plan->at("dropped")}}));
        CMG_ASSIGN_OR_RETURN(auto qi, get_json(t, state::kQueue, mk));
        if (qi && str(*qi, "status") != "resolved" && str(*qi, "status") != "skipped") {
          (*qi)["status"] = "resolved";
          qi->erase("reprocessing");
          (*qi)["resolved_at"] = format_timestamp_ms(state::now_ms());
          (*qi)["destination_id"] = *found;
          CMG_RETURN_IF_ERROR(put_json(t, state::kQueue, mk, *qi));
        }
      }
      CMG_RETURN_IF_ERROR(t.put(state::kIdmapRev, key_of({dobj, *found}), key_of({object, primary})));
      (*plan)["done"] = true;
      (*plan)["dest_id"] = *found;
      CMG_RETURN_IF_ERROR(put_json(t, state::kPlans, key_of({object, primary}), *plan));
      if (!oc->dedup_none) {
        auto keys = dedup_keys(*oc, plan->at("fields").get_object(), str(*plan, "idempotency_key"));
        for (std::size_t lvl = 0; lvl < keys.size(); ++lvl)
          for (const auto& v : keys[lvl])
            CMG_RETURN_IF_ERROR(t.put(state::kDedup, key_of({object, std::to_string(lvl), v, *found}), ""));
      }
      return t.del(state::kIntents, k).status();
    }));
  }
  return Status::ok();
}


}  // namespace cmg
