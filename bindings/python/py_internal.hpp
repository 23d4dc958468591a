// Shared pieces of the Python bindings (module `crmmigrate._crmmigrate`): JSON <-> Python
// conversion, Status -> Python exception mapping, the per-migration record of plugin failures, and
// the adapters that turn Python plugin objects into the C++ interfaces.
//
// GIL rules: every function here that takes or returns py:: objects must be called with the GIL
// held. The adapters (trampolines) are called by the pipeline with the GIL released and acquire it
// themselves for the duration of the Python call.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <boost/json.hpp>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "crmmigrate/core/connector.hpp"
#include "crmmigrate/core/merge.hpp"
#include "crmmigrate/core/normalize.hpp"
#include "crmmigrate/core/record.hpp"
#include "crmmigrate/core/status.hpp"
#include "crmmigrate/core/validate.hpp"

namespace cmg::python {

namespace py = pybind11;

// ---- JSON <-> Python (bind_json.cpp) ----

/// JSON value -> Python object (dict, list, str, int, float, bool, None). New reference.
py::object to_py(const boost::json::value& v);
py::dict to_py(const boost::json::object& o);
/// Python object -> JSON. Accepts dict (str keys), list, tuple, str, bool, int, float, None.
/// Raises TypeError (as py::error_already_set) naming `path` ("$.fields.email") otherwise.
boost::json::value to_json(py::handle h, const std::string& path = "$");
boost::json::object to_json_object(py::handle h, const std::string& path = "$");

/// Record -> {"object", "id", "updated_at", "fields"}.
py::dict record_to_py(const Record& r);
/// A plugin's record: a dict with "id" (str or int), "fields" (dict), optional "updated_at"
/// (int, Unix ms) and "object" (`default_object` when absent). Raises TypeError/ValueError.
Record record_from_py(py::handle h, std::string_view default_object);

// ---- Errors (bind_errors.cpp) ----

/// Creates crmmigrate.Error and one subclass per cmg::Code on module `m`.
void bind_errors(py::module_& m);
/// Raises the Python exception for `st` (a subclass of crmmigrate.Error, `.code` = code_name),
/// with `cause` as its __cause__ when given. Never returns.
[[noreturn]] void raise_status(const Status& st, py::handle cause = py::handle());
/// The Code of a Python exception value: its class's code when it is a crmmigrate.Error, else kPlugin.
Code code_of_exception(py::handle exc_value);
/// "<ExcType>: <message>" (or just "<ExcType>" for an empty message).
std::string describe_exception(const py::error_already_set& e);

// ---- Plugin failures (per Migration) ----

/// What went wrong inside Python code called by the pipeline during one call of a Migration:
/// the first exception raised by a plugin (kept to chain it onto the exception the caller gets),
/// and whether the call must stop (a validator, normalizer, progress callback or Ctrl-C failed:
/// those have no error channel in the C++ interface). `cancel` is read without the GIL (from
/// RunOptions::cancelled); everything else is touched only with the GIL held.
class Failures {
 public:
  Failures() = default;
  Failures(const Failures&) = delete;
  Failures& operator=(const Failures&) = delete;
  ~Failures();

  /// Records a plugin's exception (GIL held). The first one wins. `stop` makes the call cancel.
  /// `reraise` makes the caller get the original exception itself (callbacks, KeyboardInterrupt)
  /// instead of a PluginError chained to it.
  void record(const std::string& message, py::handle exc_value, bool stop, bool reraise = false);
  bool stop_requested() const noexcept { return cancel_.load(std::memory_order_relaxed); }
  void reset();  // GIL held
  bool any() const { return exc_ != nullptr || !message_.empty(); }
  const std::string& message() const { return message_; }
  py::handle exception() const { return exc_; }
  /// Hands the recorded exception to the caller (GIL held), so no reference outlives the call.
  py::object take_exception() { return py::reinterpret_steal<py::object>(std::exchange(exc_, nullptr)); }
  bool reraise() const { return reraise_; }

 private:
  std::atomic<bool> cancel_{false};
  std::string message_;
  PyObject* exc_ = nullptr;  // strong reference, GIL held to change
  bool reraise_ = false;
};

/// Base of every trampoline: where its failures go (the Migration it was last registered with).
class PluginBase {
 public:
  virtual ~PluginBase() = default;
  void attach(std::shared_ptr<Failures> f) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_ = std::move(f);
  }

 protected:
  std::shared_ptr<Failures> failures() const {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Failures> failures_;
};

/// The shared_ptr C++ keeps for a Python plugin object: it points at the C++ part and owns a
/// reference to the Python object, so the Python subclass (and its overrides) live as long as the
/// library holds the plugin. The reference is dropped with the GIL taken. Throws TypeError when
/// `obj` is not an instance of `T`'s binding.
template <typename T>
std::shared_ptr<T> hold(py::handle obj) {
  py::handle want = py::type::of<T>();
  if (!py::isinstance(obj, want)) {
    std::string msg = "expected an instance of a crmmigrate." + std::string(py::str(want.attr("__name__"))) +
                      " subclass, got " + std::string(py::str(py::type::handle_of(obj).attr("__name__")));
    PyErr_SetString(PyExc_TypeError, msg.c_str());
    throw py::error_already_set();
  }
  T* raw = obj.cast<T*>();
  auto* ref = new py::object(py::reinterpret_borrow<py::object>(obj));
  return std::shared_ptr<T>(raw, [ref](T*) {
    if (!Py_IsInitialized()) return;  // interpreter gone: nothing left to release
    py::gil_scoped_acquire gil;
    delete ref;
  });
}

/// Attaches a plugin (if it is one of ours) to a migration's failures.
template <typename T>
void attach(const std::shared_ptr<T>& p, const std::shared_ptr<Failures>& f) {
  if (auto* b = dynamic_cast<PluginBase*>(p.get())) b->attach(f);
}

// ---- Binding entry points ----
void bind_plugins(py::module_& m);
void bind_migration(py::module_& m);
void bind_sandbox(py::module_& m);

}  // namespace cmg::python
