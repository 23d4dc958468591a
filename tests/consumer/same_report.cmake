# ctest embedding.same_report_cli_c_cpp: the migration in same_report/ (CSV → JSONL, one duplicate
# folded, one record queued for a missing required field) run through the CLI (`run --json`), the C
# API and the C++ API, each in a fresh copy of the fixture, must print the same run report and the
# same reconcile report (compared as JSON with string(JSON EQUAL)), and the run report must hold the
# expected counts.
#
#   cmake -DCLI=… -DC_PROGRAM=… -DCPP_PROGRAM=… -DFIXTURE=… -DWORK_DIR=… -P same_report.cmake
cmake_minimum_required(VERSION 3.22)
foreach(v CLI C_PROGRAM CPP_PROGRAM FIXTURE WORK_DIR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "same_report.cmake: -D${v}=… is required")
  endif()
endforeach()

function(fresh_copy name out_dir)
  set(dir "${WORK_DIR}/${name}")
  file(REMOVE_RECURSE "${dir}")
  file(MAKE_DIRECTORY "${dir}/out")
  file(COPY "${FIXTURE}/people.csv" "${FIXTURE}/migration.json" DESTINATION "${dir}")
  set(${out_dir} "${dir}" PARENT_SCOPE)
endfunction()

# Runs a command; `allowed` lists the accepted exit codes; stdout (stripped) goes to `out_var`.
function(face name allowed out_var)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc IN_LIST allowed)
    message(FATAL_ERROR "${name}: exit ${rc} (expected one of ${allowed})\n${ARGN}\nstdout: ${out}\nstderr: ${err}")
  endif()
  string(STRIP "${out}" out)
  message(STATUS "${name}: ${out}")
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

fresh_copy(cli cli_dir)
face("CLI plan --approve" "0;1" ignored "${CLI}" plan -c "${cli_dir}/migration.json" --approve --reviewer "Cross-face Test")
# Exit 1: finished but incomplete (one record waits in the queue).
face("CLI run --json" "1" cli_report "${CLI}" run -c "${cli_dir}/migration.json" --json)
face("CLI reconcile --json" "1" cli_reconcile "${CLI}" reconcile -c "${cli_dir}/migration.json" --json)

# The C and C++ programs print the run report, then the reconcile report, one per line.
function(two_reports text run_var reconcile_var)
  string(REPLACE "\n" ";" lines "${text}")
  list(LENGTH lines n)
  if(NOT n EQUAL 2)
    message(FATAL_ERROR "expected two report lines, got: ${text}")
  endif()
  list(GET lines 0 first)
  list(GET lines 1 second)
  set(${run_var} "${first}" PARENT_SCOPE)
  set(${reconcile_var} "${second}" PARENT_SCOPE)
endfunction()

fresh_copy(c c_dir)
face("C API" "0" c_out "${C_PROGRAM}" "${c_dir}")
two_reports("${c_out}" c_report c_reconcile)

fresh_copy(cpp cpp_dir)
face("C++ API" "0" cpp_out "${CPP_PROGRAM}" "${cpp_dir}")
two_reports("${cpp_out}" cpp_report cpp_reconcile)

foreach(kind report reconcile)
  foreach(face c cpp)
    string(JSON same ERROR_VARIABLE err EQUAL "${cli_${kind}}" "${${face}_${kind}}")
    if(err OR NOT same)
      message(FATAL_ERROR "the ${kind} reports differ (${err}):\n  CLI: ${cli_${kind}}\n  ${face}: ${${face}_${kind}}")
    endif()
  endforeach()
endforeach()

# The shared report is the expected one, not merely the same wrong one three times.
foreach(pair "state=incomplete" "complete=OFF" "queue_open=1" "objects.contacts.source=5" "objects.contacts.written=3"
             "objects.contacts.merged=1" "objects.contacts.queued=1" "objects.contacts.skipped=0"
             "objects.contacts.pending=0")
  string(REPLACE "=" ";" kv "${pair}")
  list(GET kv 0 path)
  list(GET kv 1 want)
  string(REPLACE "." ";" path "${path}")
  string(JSON got GET "${cli_report}" ${path})
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "report: ${pair} expected, got ${got}\n${cli_report}")
  endif()
endforeach()

file(STRINGS "${cli_dir}/out/contacts.jsonl" lines)
list(LENGTH lines n)
if(NOT n EQUAL 3)
  message(FATAL_ERROR "the CLI's destination file holds ${n} records, expected 3")
endif()
message(STATUS "the CLI, the C API and the C++ API gave the same report")
