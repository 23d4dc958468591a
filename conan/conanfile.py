"""Conan 2 recipe for crmmigrate (README "Embedding").

    conan create conan/ --build=missing

Packages the static C++ core (crmmigrate::core), the shared C library with the stable ABI
(crmmigrate::c), the headers and the CLI, by running the project's own CMake install rules.
test_package/ links crmmigrate::core. The recipe lives in conan/, so export_sources() copies the
repository root (one level up).
"""
import os

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load

required_conan_version = ">=2.0"


class CrmmigrateConan(ConanFile):
    name = "crmmigrate"
    description = "Moves CRM data exactly once, with a queue for what needs a person"
    license = "proprietary"
    topics = ("crm", "migration", "etl", "exactly-once")
    package_type = "static-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"fPIC": [True, False]}
    default_options = {"fPIC": True}

    def set_version(self):
        # The one version number lives in the top-level CMakeLists.txt: project(crmmigrate VERSION x.y.z ...).
        text = load(self, os.path.join(self.recipe_folder, "..", "CMakeLists.txt"))
        marker = "project(crmmigrate VERSION "
        start = text.index(marker) + len(marker)
        self.version = text[start:].split()[0]

    def export_sources(self):
        root = os.path.join(self.recipe_folder, "..")
        for folder in ("cmake", "include", "lib", "examples"):
            copy(self, "*", os.path.join(root, folder), os.path.join(self.export_sources_folder, folder))
        copy(self, "CMakeLists.txt", root, self.export_sources_folder)
        copy(self, "CMakePresets.json", root, self.export_sources_folder)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # transitive_headers: the public C++ headers include Boost.JSON and fmt.
        self.requires("boost/1.81.0", transitive_headers=True)
        self.requires("fmt/9.1.0", transitive_headers=True)
        self.requires("openssl/[>=3 <4]")
        self.requires("lmdb/0.9.31")
        self.requires("utf8proc/2.8.0")
        self.requires("libphonenumber/8.13.35")
        self.requires("protobuf/3.21.12")
        self.requires("cli11/2.3.2")

    def build_requirements(self):
        self.test_requires("doctest/2.4.11")

    def validate(self):
        check_min_cppstd(self, 17)

    def generate(self):
        tc = CMakeToolchain(self)
        # The package is the library, its C ABI and the CLI: no tests, benchmarks or Python module.
        tc.cache_variables["CMG_BUILD_TESTS"] = False
        tc.cache_variables["CMG_BUILD_BENCH"] = False
        tc.cache_variables["CMG_BUILD_PYTHON"] = False
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        CMake(self).install()

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "crmmigrate")
        self.cpp_info.set_property("pkg_config_name", "crmmigrate")

        core = self.cpp_info.components["core"]
        core.set_property("cmake_target_name", "crmmigrate::core")
        core.libs = ["crmmigrate"]
        core.defines = [f'CMG_VERSION_STRING="{self.version}"']
        core.requires = ["boost::json", "fmt::fmt", "openssl::ssl", "openssl::crypto", "lmdb::lmdb",
                         "utf8proc::utf8proc", "libphonenumber::libphonenumber", "protobuf::libprotobuf"]
        if self.settings.os in ("Linux", "FreeBSD"):
            core.system_libs = ["pthread"]

        c = self.cpp_info.components["c"]
        c.set_property("cmake_target_name", "crmmigrate::c")
        c.set_property("pkg_config_name", "crmmigrate_c")
        c.libs = ["crmmigrate_c"]
