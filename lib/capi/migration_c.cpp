// cmg_migration_*: open/close, plan, run/reprocess/delta, status, reconcile, alerts.
#include <filesystem>

#include "capi/capi_internal.hpp"
#include "capi/connectors_c.hpp"
#include "crmmigrate/core/config.hpp"

using namespace cmg::capi;
namespace json = boost::json;

namespace {

// Translates the C run options and keeps what the progress callback decided.
struct RunCall {
  cmg::RunOptions opts;
  int stop_rc = 0;  // the progress callback's non-zero return, when it asked to stop
};

int make_run_options(const char* fn, const cmg_run_options* in, RunCall& call) {
  if (!in) return CMG_OK;
  if (in->version == 0 || in->version > CMG_RUN_OPTIONS_VERSION)
    return invalid(std::string(fn) + ": unknown cmg_run_options version " + std::to_string(in->version) +
                   " (this library knows up to " + std::to_string(CMG_RUN_OPTIONS_VERSION) +
                   "); initialise it with CMG_RUN_OPTIONS_INIT");
  call.opts.dry_run = in->dry_run != 0;
  if (in->object) call.opts.only_object = in->object;
  if (in->limit >= 0) call.opts.limit = in->limit;
  call.opts.accept_counts = in->accept_counts != 0;
  call.opts.ack_halt = in->ack_halt != 0;
  if (in->reviewer) call.opts.reviewer = in->reviewer;
  if (in->progress) {
    cmg_progress_cb cb = in->progress;
    void* ud = in->user_data;
    call.opts.progress = [cb, ud, &call](const cmg::Progress& p) {
      if (call.stop_rc != 0) return;
      int rc = cb(p.object.c_str(), p.phase.c_str(), p.done, p.total, ud);
      if (rc != 0) call.stop_rc = rc;
    };
  }
  return CMG_OK;
}

using RunFn = cmg::Result<cmg::Report> (cmg::Migration::*)(const cmg::RunOptions&);

int run_like(const char* fn, cmg_buf* out, cmg_migration* m, const cmg_run_options* in, RunFn method) {
  return guard(fn, [&]() -> int {
    if (!out) return invalid(std::string(fn) + ": out_report_json is NULL");
    if (!m) return invalid(std::string(fn) + ": migration is NULL");
    RunCall call;
    if (int rc = make_run_options(fn, in, call)) return rc;
    auto failures = m->failures;
    failures->reset();
    call.opts.cancelled = [&call, failures] { return call.stop_rc != 0 || failures->failed(); };
    auto r = ((*m->migration).*method)(call.opts);
    if (failures->failed()) return set_error(CMG_EPLUGIN, failures->message());
    if (!r.is_ok()) return fail(r.status());
    json::object report = r->to_json();
    if (call.stop_rc != 0) report["cancelled"] = true;
    buf_json(out, report);
    if (call.stop_rc != 0)
      set_error(CMG_EUSER, std::string(fn) + ": stopped by the progress callback (it returned " +
                               std::to_string(call.stop_rc) + ")");
    return call.stop_rc;
  });
}

int check_plain(const char* fn, cmg_buf* out, cmg_migration* m) {
  if (!out) return invalid(std::string(fn) + ": output buffer is NULL");
  if (!m) return invalid(std::string(fn) + ": migration is NULL");
  return CMG_OK;
}

}  // namespace

extern "C" {

int cmg_open_options_init(cmg_open_options* opts, unsigned int version) {
  return guard("cmg_open_options_init", [&]() -> int {
    if (!opts) return invalid("cmg_open_options_init: opts is NULL");
    if (version == 0 || version > CMG_OPEN_OPTIONS_VERSION)
      return invalid("cmg_open_options_init: unknown version " + std::to_string(version));
    *opts = cmg_open_options CMG_OPEN_OPTIONS_INIT;
    opts->version = version;
    return CMG_OK;
  });
}

int cmg_run_options_init(cmg_run_options* opts, unsigned int version) {
  return guard("cmg_run_options_init", [&]() -> int {
    if (!opts) return invalid("cmg_run_options_init: opts is NULL");
    if (version == 0 || version > CMG_RUN_OPTIONS_VERSION)
      return invalid("cmg_run_options_init: unknown version " + std::to_string(version));
    *opts = cmg_run_options CMG_RUN_OPTIONS_INIT;
    opts->version = version;
    return CMG_OK;
  });
}

int cmg_migration_open(cmg_migration** out, const char* config_json, const char* config_path,
                       const cmg_open_options* opts) {
  return guard("cmg_migration_open", [&]() -> int {
    // Take ownership of the custom connectors' user data first: every return below destroys it.
    std::shared_ptr<cmg::Source> source;
    std::shared_ptr<cmg::Destination> destination;
    std::unique_ptr<UserData> source_ud, destination_ud;
    if (opts && opts->version >= 1) {
      if (opts->source) source_ud = std::make_unique<UserData>(opts->source->destroy, opts->source_user_data);
      if (opts->destination)
        destination_ud = std::make_unique<UserData>(opts->destination->destroy, opts->destination_user_data);
    }
    if (out) *out = nullptr;
    if (!out) return invalid("cmg_migration_open: out is NULL");
    if (opts && (opts->version == 0 || opts->version > CMG_OPEN_OPTIONS_VERSION))
      return invalid("cmg_migration_open: unknown cmg_open_options version " + std::to_string(opts->version) +
                     "; initialise it with CMG_OPEN_OPTIONS_INIT");
    if ((config_json == nullptr) == (config_path == nullptr))
      return invalid("cmg_migration_open: give exactly one of config_json and config_path");
    if (source_ud) {
      auto s = make_c_source(opts->source, std::move(source_ud));
      if (!s.is_ok()) return fail(s.status());
      source = std::move(*s);
    }
    if (destination_ud) {
      auto d = make_c_destination(opts->destination, std::move(destination_ud));
      if (!d.is_ok()) return fail(d.status());
      destination = std::move(*d);
    }
    std::string base_dir = opts && opts->base_dir ? std::string(opts->base_dir)
                                                  : std::filesystem::current_path().string();
    auto cfg = config_json ? cmg::parse_config(config_json, "config", base_dir) : cmg::load_config(config_path);
    if (!cfg.is_ok()) return fail(cfg.status());
    if (opts && opts->state_dir) cfg->state_dir = std::filesystem::absolute(opts->state_dir).lexically_normal().string();
    auto mig = cmg::Migration::open(std::move(*cfg), std::move(source), std::move(destination));
    if (!mig.is_ok()) return fail(mig.status());
    auto handle = std::make_unique<cmg_migration>();
    handle->migration = std::move(*mig);
    *out = handle.release();
    return CMG_OK;
  });
}

void cmg_migration_close(cmg_migration* migration) {
  guard_void("cmg_migration_close", [&] { delete migration; });
}

int cmg_migration_plan(cmg_buf* out_json, cmg_migration* migration, int approve, const char* reviewer) {
  return guard("cmg_migration_plan", [&]() -> int {
    if (int rc = check_plain("cmg_migration_plan", out_json, migration)) return rc;
    if (approve && (!reviewer || !*reviewer)) return invalid("cmg_migration_plan: approving needs a reviewer");
    auto plan = migration->migration->plan(approve != 0, reviewer ? reviewer : "");
    if (!plan.is_ok()) return fail(plan.status());
    buf_json(out_json, *plan);
    return CMG_OK;
  });
}

int cmg_migration_run(cmg_buf* out_report_json, cmg_migration* migration, const cmg_run_options* opts) {
  return run_like("cmg_migration_run", out_report_json, migration, opts, &cmg::Migration::run);
}

int cmg_migration_reprocess(cmg_buf* out_report_json, cmg_migration* migration, const cmg_run_options* opts) {
  return run_like("cmg_migration_reprocess", out_report_json, migration, opts, &cmg::Migration::reprocess);
}

int cmg_migration_delta(cmg_buf* out_report_json, cmg_migration* migration, const cmg_run_options* opts) {
  return run_like("cmg_migration_delta", out_report_json, migration, opts, &cmg::Migration::delta);
}

int cmg_migration_status(cmg_buf* out_report_json, cmg_migration* migration) {
  return guard("cmg_migration_status", [&]() -> int {
    if (int rc = check_plain("cmg_migration_status", out_report_json, migration)) return rc;
    auto r = migration->migration->status();
    if (!r.is_ok()) return fail(r.status());
    buf_json(out_report_json, r->to_json());
    return CMG_OK;
  });
}

int cmg_migration_reconcile(cmg_buf* out_report_json, cmg_migration* migration) {
  return guard("cmg_migration_reconcile", [&]() -> int {
    if (int rc = check_plain("cmg_migration_reconcile", out_report_json, migration)) return rc;
    auto failures = migration->failures;
    failures->reset();
    auto r = migration->migration->reconcile();
    if (failures->failed()) return set_error(CMG_EPLUGIN, failures->message());
    if (!r.is_ok()) return fail(r.status());
    buf_json(out_report_json, r->to_json());
    return CMG_OK;
  });
}

int cmg_migration_set_alert_callback(cmg_migration* migration, cmg_alert_cb cb, void* user_data,
                                     void (*destroy)(void*)) {
  return guard("cmg_migration_set_alert_callback", [&]() -> int {
    auto ud = std::make_shared<UserData>(destroy, user_data);
    if (!migration) return invalid("cmg_migration_set_alert_callback: migration is NULL");
    if (!cb) {
      migration->migration->set_alert_callback(nullptr);
      return CMG_OK;
    }
    migration->migration->set_alert_callback([cb, ud](const cmg::Alert& a) {
      cb(a.kind.c_str(), a.object.c_str(), a.message.c_str(), ud->get());
    });
    return CMG_OK;
  });
}

}  // extern "C"
