// The extension module crmmigrate._crmmigrate; the package crmmigrate re-exports it.
#include "py_internal.hpp"

PYBIND11_MODULE(_crmmigrate, m) {
  m.doc() = "crmmigrate: moves CRM data exactly once, with a queue for what needs a person (C++ core).";
  m.attr("__version__") = CMG_VERSION_STRING;
  cmg::python::bind_errors(m);
  cmg::python::bind_plugins(m);
  cmg::python::bind_migration(m);
  cmg::python::bind_sandbox(m);
}
