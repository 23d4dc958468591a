// crmmigrate.sandbox: the built-in sandbox CRM and the reference scenario, so Python scripts and
// tests can prepare a source and a destination without the CLI.
#include "crmmigrate/sandbox/reference.hpp"
#include "crmmigrate/sandbox/sandbox.hpp"
#include "py_internal.hpp"

namespace json = boost::json;

namespace cmg::python {

namespace {

template <typename T>
T value_or_raise(Result<T> r) {
  if (!r.is_ok()) raise_status(r.status());
  return std::move(r).value();
}

void ok_or_raise(const Status& st) {
  if (!st.is_ok()) raise_status(st);
}

// The sandbox handle, closable (its LMDB environment must be closed before a Migration that names
// the same directory in its config opens it in another process).
class PySandbox {
 public:
  explicit PySandbox(std::shared_ptr<sandbox::SandboxCrm> s) : s_(std::move(s)) {}
  sandbox::SandboxCrm& get() {
    if (!s_) raise_status(invalid_argument("the sandbox is closed"));
    return *s_;
  }
  void close() {
    py::gil_scoped_release release;
    s_.reset();
  }

 private:
  std::shared_ptr<sandbox::SandboxCrm> s_;
};

}  // namespace

void bind_sandbox(py::module_& m) {
  py::module_ sb = m.def_submodule("sandbox", "The built-in sandbox CRM and the reference scenario.");

  sb.def(
      "seed_reference",
      [](const std::string& source_dir, const std::string& destination_dir, std::uint64_t seed) {
        Result<sandbox::ReferenceManifest> r = Status(Code::kInternal, "unset");
        {
          py::gil_scoped_release release;
          r = sandbox::seed_reference(source_dir, destination_dir, seed);
        }
        return to_py(value_or_raise(std::move(r)).to_json());
      },
      py::arg("source_dir"), py::arg("destination_dir"), py::arg("seed") = 42,
      R"doc(Creates a Pipedrive-shaped sandbox in ``source_dir`` and a HubSpot-shaped one in
``destination_dir`` filled with the reference scenario generated from ``seed`` (README "The
reference scenario"), writes ``<source_dir>/manifest.json`` and returns the manifest as a dict.
AlreadyExistsError when a directory already holds a sandbox.)doc");

  sb.def("preset_names", &sandbox::preset_names, "Names of the built-in presets (\"hubspot\", \"pipedrive\").");

  py::class_<PySandbox>(sb, "Sandbox", R"doc(
A sandbox CRM stored in a directory: create one from a preset, add users and records, then name its
directory in a migration config ({"connector": "sandbox", "options": {"path": DIR}}). Close it (or
use ``with``) before a migration opens the same directory.)doc")
      .def_static(
          "create",
          [](const std::string& dir, const std::string& preset) {
            Result<std::shared_ptr<sandbox::SandboxCrm>> r = Status(Code::kInternal, "unset");
            {
              py::gil_scoped_release release;
              r = sandbox::SandboxCrm::create(dir, preset);
            }
            return PySandbox(value_or_raise(std::move(r)));
          },
          py::arg("dir"), py::arg("preset"),
          "Creates a sandbox of ``preset`` (\"hubspot\", \"pipedrive\") in ``dir``. AlreadyExistsError when\n"
          "``dir`` already holds one.")
      .def_static(
          "open",
          [](const std::string& dir) {
            Result<std::shared_ptr<sandbox::SandboxCrm>> r = Status(Code::kInternal, "unset");
            {
              py::gil_scoped_release release;
              r = sandbox::SandboxCrm::open(dir);
            }
            return PySandbox(value_or_raise(std::move(r)));
          },
          py::arg("dir"), "Opens the sandbox stored in ``dir``. NotFoundError when it holds none.")
      .def("close", &PySandbox::close, "Closes the sandbox. Idempotent.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PySandbox& s, py::handle, py::handle, py::handle) { s.close(); })
      .def(
          "set_user",
          [](PySandbox& s, const std::string& id, const std::string& email, const std::string& name, bool active) {
            ok_or_raise(s.get().set_user(User{id, email, name, active}));
          },
          py::arg("id"), py::arg("email"), py::arg("name"), py::arg("active") = true,
          "Adds the user (a destination owner), or replaces the one with the same id.")
      .def(
          "insert",
          [](PySandbox& s, const std::string& object, py::dict fields, std::int64_t updated_at) {
            json::object f = to_json_object(fields, "fields");
            return value_or_raise(s.get().insert(object, std::move(f), updated_at));
          },
          py::arg("object"), py::arg("fields"), py::arg("updated_at") = 0,
          "Stores a new record (fields as given, not validated) and returns its id.")
      .def(
          "insert_many",
          [](PySandbox& s, const std::string& object, py::list records) {
            std::vector<sandbox::NewRecord> rs;
            rs.reserve(records.size());
            for (auto r : records) {
              auto d = r.cast<py::dict>();
              sandbox::NewRecord nr;
              nr.fields = to_json_object(d["fields"], "records[].fields");
              if (d.contains("updated_at")) nr.updated_at = d["updated_at"].cast<std::int64_t>();
              rs.push_back(std::move(nr));
            }
            Result<std::vector<std::string>> ids = Status(Code::kInternal, "unset");
            {
              py::gil_scoped_release release;
              ids = s.get().insert_many(object, rs);
            }
            return value_or_raise(std::move(ids));
          },
          py::arg("object"), py::arg("records"),
          "Stores many records ({\"fields\", \"updated_at\"?} dicts) in one transaction; returns their ids.")
      .def(
          "count",
          [](PySandbox& s, const std::string& object) {
            Result<std::int64_t> n = Status(Code::kInternal, "unset");
            {
              py::gil_scoped_release release;
              n = s.get().count(object);
            }
            return value_or_raise(std::move(n));
          },
          py::arg("object"), "Number of records of ``object``.")
      .def(
          "read",
          [](PySandbox& s, const std::string& object, const std::vector<std::string>& ids) {
            auto got = value_or_raise(s.get().read(object, ids));
            py::list out;
            for (const auto& r : got) out.append(r ? py::object(record_to_py(*r)) : py::object(py::none()));
            return out;
          },
          py::arg("object"), py::arg("ids"), "Records by id: one dict or None per id.")
      .def(
          "find",
          [](PySandbox& s, const std::string& object, const std::string& field, const std::vector<std::string>& values) {
            auto got = value_or_raise(s.get().find(object, field, values));
            py::list out;
            for (const auto& r : got) out.append(record_to_py(r));
            return out;
          },
          py::arg("object"), py::arg("field"), py::arg("values"),
          "Records whose ``field`` equals one of ``values`` exactly.");
}

}  // namespace cmg::python
