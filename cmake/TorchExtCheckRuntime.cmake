# Run after linking libtorch_ext.so (cmake -DLIBRARY=... -DNM=... -P this file): fails the
# build if the library holds a private copy of libstdc++'s stream and locale code.
#
# Some toolchains (a gcc-toolset/devtoolset GCC, e.g. one at /opt/gcc whose libstdc++ is
# partly a static archive) link such a copy into every shared library they build. Its
# locale tables are not those of the libstdc++ the process runs with, so the first error
# message that formats a number (`std::ostream << double`) reads the wrong facet and the
# process crashes: seen on a GPU machine whose CXX was such a compiler.
if(NOT NM OR NOT EXISTS "${LIBRARY}")
  return()
endif()
# Exported symbols, then the full symbol table (absent from a stripped library).
execute_process(COMMAND "${NM}" -D --defined-only "${LIBRARY}" OUTPUT_VARIABLE exported ERROR_QUIET)
execute_process(COMMAND "${NM}" --defined-only "${LIBRARY}" OUTPUT_VARIABLE all ERROR_QUIET)
# std::basic_ostream::_M_insert<T> and std::locale's members live in libstdc++.so alone.
if("${exported}${all}" MATCHES " (_ZNSo9_M_insertI|_ZNSt6locale)")
  file(REMOVE "${LIBRARY}")
  message(FATAL_ERROR
    "torch_ext: ${LIBRARY} came out with its own copy of libstdc++'s stream code, which "
    "crashes the first time an error message formats a number. The C++ compiler "
    "(${CXX}) links part of libstdc++ statically; build with one that links the system's "
    "libstdc++.so, e.g. CC=/usr/bin/gcc CXX=/usr/bin/g++ (a fresh build folder).")
endif()
