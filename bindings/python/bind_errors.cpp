// crmmigrate.Error and one subclass per cmg::Code; Status -> exception; exception -> Status text.
#include <array>

#include "py_internal.hpp"

namespace cmg::python {

namespace {

struct ErrorClass {
  Code code;
  const char* name;
  const char* doc;
};

constexpr std::array<ErrorClass, 13> kClasses = {{
    {Code::kInvalidArgument, "InvalidArgumentError", "A bad call: a missing reviewer, an unknown option value, no matching plan sign-off."},
    {Code::kConfig, "ConfigError", "The migration config is invalid; the message names the JSON path."},
    {Code::kParse, "ParseError", "A malformed input file; the message names the file and line."},
    {Code::kNotFound, "NotFoundError", "A named record, queue item, object, key or file does not exist."},
    {Code::kAlreadyExists, "AlreadyExistsError", "A unique value is taken (e.g. a sandbox already exists)."},
    {Code::kLocked, "LockedError", "Another run, reprocess or delta holds this migration's lock."},
    {Code::kUnavailable, "UnavailableError", "The source or destination is unreachable (retryable later)."},
    {Code::kPermissionDenied, "PermissionDeniedError", "The source or destination refused the credentials."},
    {Code::kIO, "StorageIOError", "A filesystem or storage I/O failure."},
    {Code::kStorage, "StorageError", "An LMDB state error other than I/O."},
    {Code::kCancelled, "CancelledError", "The call was stopped (signal or cancel request)."},
    {Code::kPlugin, "PluginError",
     "A user plugin (source, destination, merge rule, validator, normalizer) failed. When it was a Python\n"
     "plugin, the original exception is chained as __cause__ and named in the message."},
    {Code::kInternal, "InternalError", "A bug in crmmigrate: an invariant did not hold."},
}};

// Module-lifetime references (never released: the module is not unloaded before exit).
PyObject* g_base = nullptr;
std::array<PyObject*, kClasses.size()> g_types{};

PyObject* type_for(Code code) {
  for (std::size_t i = 0; i < kClasses.size(); ++i)
    if (kClasses[i].code == code) return g_types[i];
  return g_base;
}

}  // namespace

void bind_errors(py::module_& m) {
  g_base = PyErr_NewExceptionWithDoc(
      "crmmigrate.Error",
      "Base class of every crmmigrate error. `code` is the stable code name (\"config\", \"plugin\", ...).\n"
      "A halted, paused or incomplete migration is not an error: it is the report's \"state\".",
      PyExc_Exception, nullptr);
  if (!g_base) throw py::error_already_set();
  py::handle base(g_base);
  base.attr("code") = "error";
  m.add_object("Error", py::reinterpret_borrow<py::object>(base));
  for (std::size_t i = 0; i < kClasses.size(); ++i) {
    std::string qual = std::string("crmmigrate.") + kClasses[i].name;
    PyObject* t = PyErr_NewExceptionWithDoc(qual.c_str(), kClasses[i].doc, g_base, nullptr);
    if (!t) throw py::error_already_set();
    py::handle(t).attr("code") = code_name(kClasses[i].code);
    g_types[i] = t;
    m.add_object(kClasses[i].name, py::reinterpret_borrow<py::object>(py::handle(t)));
  }
}

void raise_status(const Status& st, py::handle cause) {
  PyObject* type = type_for(st.code());
  py::object exc = py::reinterpret_borrow<py::object>(type)(st.message());
  if (cause) PyException_SetCause(exc.ptr(), py::reinterpret_borrow<py::object>(cause).release().ptr());
  PyErr_SetObject(type, exc.ptr());
  throw py::error_already_set();
}

Code code_of_exception(py::handle exc_value) {
  if (!exc_value || !g_base || !PyObject_IsInstance(exc_value.ptr(), g_base)) return Code::kPlugin;
  for (std::size_t i = 0; i < kClasses.size(); ++i)
    if (PyObject_IsInstance(exc_value.ptr(), g_types[i]) == 1) return kClasses[i].code;
  return Code::kPlugin;
}

std::string describe_exception(const py::error_already_set& e) {
  std::string type = "Exception";
  if (e.type()) type = py::str(e.type().attr("__qualname__"));
  std::string text;
  if (e.value()) {
    PyObject* s = PyObject_Str(e.value().ptr());
    if (s) {
      text = py::reinterpret_steal<py::str>(s);
    } else {
      PyErr_Clear();
    }
  }
  return text.empty() ? type : type + ": " + text;
}

}  // namespace cmg::python
