// boost::json <-> Python objects, and records as dicts.
#include <cmath>

#include "py_internal.hpp"

namespace json = boost::json;

namespace cmg::python {

namespace {

[[noreturn]] void type_error(const std::string& path, const std::string& what) {
  PyErr_SetString(PyExc_TypeError, (path + ": " + what).c_str());
  throw py::error_already_set();
}

std::string type_name(py::handle h) { return py::str(py::type::handle_of(h).attr("__name__")); }

}  // namespace

py::object to_py(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return py::none();
    case json::kind::bool_: return py::bool_(v.get_bool());
    case json::kind::int64: return py::int_(v.get_int64());
    case json::kind::uint64: return py::int_(v.get_uint64());
    case json::kind::double_: return py::float_(v.get_double());
    case json::kind::string: {
      const auto& s = v.get_string();
      // Invalid UTF-8 from a platform must not make a report unreadable: replace, never raise.
      PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
      if (!o) throw py::error_already_set();
      return py::reinterpret_steal<py::object>(o);
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      py::list l(a.size());
      for (std::size_t i = 0; i < a.size(); ++i) l[i] = to_py(a[i]);
      return std::move(l);
    }
    case json::kind::object: return to_py(v.get_object());
  }
  return py::none();
}

py::dict to_py(const json::object& o) {
  py::dict d;
  for (const auto& [k, e] : o) d[py::str(k.data(), k.size())] = to_py(e);
  return d;
}

json::value to_json(py::handle h, const std::string& path) {
  PyObject* o = h.ptr();
  if (o == Py_None) return nullptr;
  if (PyBool_Check(o)) return o == Py_True;
  if (PyLong_Check(o)) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
    if (overflow == 0) return static_cast<std::int64_t>(v);
    if (overflow > 0) {
      unsigned long long u = PyLong_AsUnsignedLongLong(o);
      if (!PyErr_Occurred()) return static_cast<std::uint64_t>(u);
      PyErr_Clear();
    }
    type_error(path, "integer out of the 64-bit range");
  }
  if (PyFloat_Check(o)) {
    double d = PyFloat_AS_DOUBLE(o);
    if (!std::isfinite(d)) type_error(path, "NaN and infinity have no JSON form");
    return d;
  }
  if (PyUnicode_Check(o)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) throw py::error_already_set();
    return json::string(s, static_cast<std::size_t>(n));
  }
  if (PyDict_Check(o)) return to_json_object(h, path);
  if (PyList_Check(o) || PyTuple_Check(o)) {
    auto seq = py::reinterpret_borrow<py::sequence>(h);
    json::array a;
    a.reserve(seq.size());
    std::size_t i = 0;
    for (auto item : seq) a.push_back(to_json(item, path + "[" + std::to_string(i++) + "]"));
    return a;
  }
  type_error(path, "a " + type_name(h) + " has no JSON form (use dict, list, str, int, float, bool or None)");
}

json::object to_json_object(py::handle h, const std::string& path) {
  if (!PyDict_Check(h.ptr())) type_error(path, "expected a dict, got " + type_name(h));
  json::object out;
  PyObject* key = nullptr;
  PyObject* value = nullptr;
  Py_ssize_t pos = 0;
  out.reserve(static_cast<std::size_t>(PyDict_Size(h.ptr())));
  while (PyDict_Next(h.ptr(), &pos, &key, &value)) {
    if (!PyUnicode_Check(key)) type_error(path, "dict keys must be str, got " + type_name(key));
    Py_ssize_t n = 0;
    const char* k = PyUnicode_AsUTF8AndSize(key, &n);
    if (!k) throw py::error_already_set();
    std::string_view kv(k, static_cast<std::size_t>(n));
    out[kv] = to_json(value, path + "." + std::string(kv));
  }
  return out;
}

py::dict record_to_py(const Record& r) {
  py::dict d;
  d["object"] = r.object;
  d["id"] = r.id;
  d["updated_at"] = r.updated_at;
  d["fields"] = to_py(r.fields);
  return d;
}

Record record_from_py(py::handle h, std::string_view default_object) {
  if (!PyDict_Check(h.ptr())) type_error("record", "expected a dict {\"id\", \"fields\", \"updated_at\"?}, got " + type_name(h));
  Record r;
  PyObject* d = h.ptr();
  PyObject* id = PyDict_GetItemString(d, "id");  // borrowed
  if (!id) type_error("record", "missing \"id\"");
  if (PyUnicode_Check(id)) {
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(id, &n);
    if (!s) throw py::error_already_set();
    r.id.assign(s, static_cast<std::size_t>(n));
  } else if (PyLong_Check(id) && !PyBool_Check(id)) {
    r.id = py::str(id);
  } else {
    type_error("record.id", "expected str or int, got " + type_name(id));
  }
  if (r.id.empty()) type_error("record.id", "must not be empty");
  if (PyObject* obj = PyDict_GetItemString(d, "object"); obj && obj != Py_None) {
    if (!PyUnicode_Check(obj)) type_error("record " + r.id + ".object", "expected str");
    r.object = py::str(obj);
  } else {
    r.object = std::string(default_object);
  }
  if (PyObject* u = PyDict_GetItemString(d, "updated_at"); u && u != Py_None) {
    if (!PyLong_Check(u) || PyBool_Check(u)) type_error("record " + r.id + ".updated_at", "expected int (Unix ms)");
    r.updated_at = PyLong_AsLongLong(u);
    if (r.updated_at == -1 && PyErr_Occurred()) throw py::error_already_set();
  }
  PyObject* f = PyDict_GetItemString(d, "fields");
  if (!f) type_error("record " + r.id, "missing \"fields\"");
  r.fields = to_json_object(f, "record " + r.id + ".fields");
  return r;
}

}  // namespace cmg::python
