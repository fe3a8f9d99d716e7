# Included by the top-level CMakeLists.txt: defines the asyncio_static target
# (libasyncio.a) from the asyncio_objects object library.
#
# The sources share internal functions and variables (stack_alloc(),
# task_park(), loop_tls, ...). -fvisibility=hidden keeps them out of
# libasyncio.so, but an archive of the plain objects would keep them global,
# and a program with a function of the same name would not link against
# libasyncio.a. So libasyncio.a holds one object: all of the library's
# objects linked together (cc -r), then every hidden symbol made local
# (objcopy --localize-hidden); only the ASYNCIO_API functions stay global.
# (A program linking it statically then takes in the whole library, not only
# the objects it uses: about 40 KB more code for the smallest program.)
# A configure-time probe checks that the tools do this; where they do not
# (no objcopy, not ELF, as on macOS, or LTO objects) the archive holds the
# plain objects, as before, and a message says so.
option(ASYNCIO_STATIC_LOCALIZE
       "Build libasyncio.a as one object with its internal names made local" ON)
mark_as_advanced(ASYNCIO_STATIC_LOCALIZE)
set(ASYNCIO_STATIC_LOCALIZED OFF)
set(ASYNCIO_STATIC_PLAIN_REASON "")
get_property(_asyncio_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
if(NOT ASYNCIO_STATIC_LOCALIZE)
  set(ASYNCIO_STATIC_PLAIN_REASON "ASYNCIO_STATIC_LOCALIZE is OFF")
elseif(APPLE OR WIN32 OR NOT CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  set(ASYNCIO_STATIC_PLAIN_REASON "needs an ELF platform and a GCC-compatible compiler")
elseif(NOT CMAKE_OBJCOPY)
  set(ASYNCIO_STATIC_PLAIN_REASON "no objcopy found (CMAKE_OBJCOPY)")
elseif(CMAKE_INTERPROCEDURAL_OPTIMIZATION OR CMAKE_C_FLAGS MATCHES "-flto")
  set(ASYNCIO_STATIC_PLAIN_REASON "LTO objects hold no final symbols to make local")
elseif(_asyncio_multi_config AND CMAKE_VERSION VERSION_LESS 3.20)
  set(ASYNCIO_STATIC_PLAIN_REASON "a multi-config generator needs CMake 3.20 or later for it")
else()
  # The partial link is a link, not a compilation: only the flags that
  # choose the target (-m32, --target=...) are given to it. Sanitizer and
  # coverage flags would make the driver add their run-time libraries, even
  # with -nostdlib (gcc adds -lgcov, clang its ASan run-time).
  set(ASYNCIO_PARTIAL_LINK ${CMAKE_C_COMPILER})
  set(_asyncio_flags "${CMAKE_C_COMPILER_ARG1} ${CMAKE_C_FLAGS}")
  separate_arguments(_asyncio_flags UNIX_COMMAND "${_asyncio_flags}")
  set(_asyncio_next_is_target OFF)
  foreach(f IN LISTS _asyncio_flags)
    if(_asyncio_next_is_target OR f MATCHES
       "^(-m(16|32|64|x32|abi=|arch=|cpu=|float-abi=|big-endian|little-endian)|--target=)")
      list(APPEND ASYNCIO_PARTIAL_LINK ${f})
    endif()
    set(_asyncio_next_is_target OFF)
    if(f STREQUAL "-target")
      list(APPEND ASYNCIO_PARTIAL_LINK ${f})
      set(_asyncio_next_is_target ON)
    endif()
  endforeach()
  if(CMAKE_C_COMPILER_TARGET AND CMAKE_C_COMPILE_OPTIONS_TARGET)
    list(APPEND ASYNCIO_PARTIAL_LINK
         "${CMAKE_C_COMPILE_OPTIONS_TARGET}${CMAKE_C_COMPILER_TARGET}")
  endif()
  list(APPEND ASYNCIO_PARTIAL_LINK -r -nostdlib)
  # Probe: a hidden function must end up local, a default one global.
  set(_asyncio_probe ${PROJECT_BINARY_DIR}/CMakeFiles/asyncio_localize_probe)
  file(MAKE_DIRECTORY ${_asyncio_probe})
  file(WRITE ${_asyncio_probe}/probe.c
    "__attribute__((visibility(\"hidden\"))) int asyncio_probe_hidden(int x);\n"
    "int asyncio_probe_hidden(int x) { return x + 1; }\n"
    "int asyncio_probe_public(int x);\n"
    "int asyncio_probe_public(int x) { return asyncio_probe_hidden(x); }\n")
  separate_arguments(_asyncio_cflags UNIX_COMMAND "${CMAKE_C_COMPILER_ARG1} ${CMAKE_C_FLAGS}")
  execute_process(
    COMMAND ${CMAKE_C_COMPILER} ${_asyncio_cflags} -fPIC -c probe.c -o probe.o
    WORKING_DIRECTORY ${_asyncio_probe} RESULT_VARIABLE _asyncio_rc
    OUTPUT_QUIET ERROR_QUIET)
  if(_asyncio_rc STREQUAL "0")
    execute_process(COMMAND ${ASYNCIO_PARTIAL_LINK} -o probe-r.o probe.o
      WORKING_DIRECTORY ${_asyncio_probe} RESULT_VARIABLE _asyncio_rc
      OUTPUT_QUIET ERROR_QUIET)
  endif()
  if(_asyncio_rc STREQUAL "0")
    execute_process(COMMAND ${CMAKE_OBJCOPY} --localize-hidden probe-r.o probe-l.o
      WORKING_DIRECTORY ${_asyncio_probe} RESULT_VARIABLE _asyncio_rc
      OUTPUT_QUIET ERROR_QUIET)
  endif()
  set(_asyncio_syms "")
  if(_asyncio_rc STREQUAL "0" AND CMAKE_NM)
    execute_process(COMMAND ${CMAKE_NM} -g --defined-only probe-l.o
      WORKING_DIRECTORY ${_asyncio_probe} RESULT_VARIABLE _asyncio_rc
      OUTPUT_VARIABLE _asyncio_syms ERROR_QUIET)
  endif()
  if(NOT _asyncio_rc STREQUAL "0")
    string(REPLACE ";" " " _asyncio_cmd "${ASYNCIO_PARTIAL_LINK}")
    set(ASYNCIO_STATIC_PLAIN_REASON "a probe of '${_asyncio_cmd}' and objcopy failed")
  elseif(CMAKE_NM AND (NOT _asyncio_syms MATCHES "asyncio_probe_public"
                       OR _asyncio_syms MATCHES "asyncio_probe_hidden"))
    set(ASYNCIO_STATIC_PLAIN_REASON "objcopy --localize-hidden did not make a hidden name local")
  else()
    set(ASYNCIO_STATIC_LOCALIZED ON)
  endif()
endif()

if(ASYNCIO_STATIC_LOCALIZED)
  message(STATUS "libasyncio.a: one object, internal names local")
  set(_asyncio_obj_dir ${PROJECT_BINARY_DIR}/asyncio_static_object)
  if(_asyncio_multi_config)
    set(_asyncio_obj_dir ${_asyncio_obj_dir}/$<CONFIG>)
  endif()
  set(ASYNCIO_STATIC_OBJECT ${_asyncio_obj_dir}/asyncio.o)
  # The linked object goes to asyncio-r.o first: a failed objcopy then
  # leaves no asyncio.o that make would take for up to date.
  add_custom_command(OUTPUT ${ASYNCIO_STATIC_OBJECT}
    BYPRODUCTS ${_asyncio_obj_dir}/asyncio-r.o
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_asyncio_obj_dir}
    COMMAND ${ASYNCIO_PARTIAL_LINK} -o ${_asyncio_obj_dir}/asyncio-r.o
            $<TARGET_OBJECTS:asyncio_objects>
    COMMAND ${CMAKE_OBJCOPY} --localize-hidden ${_asyncio_obj_dir}/asyncio-r.o
            ${ASYNCIO_STATIC_OBJECT}
    DEPENDS asyncio_objects $<TARGET_OBJECTS:asyncio_objects>
    COMMENT "Linking libasyncio.a's objects into one, internal names made local"
    COMMAND_EXPAND_LISTS VERBATIM)
  set_source_files_properties(${ASYNCIO_STATIC_OBJECT} PROPERTIES
                              EXTERNAL_OBJECT TRUE GENERATED TRUE)
  add_library(asyncio_static STATIC ${ASYNCIO_STATIC_OBJECT})
  set_target_properties(asyncio_static PROPERTIES LINKER_LANGUAGE C)
else()
  set(_asyncio_level NOTICE)
  if(NOT ASYNCIO_STATIC_LOCALIZE)
    set(_asyncio_level STATUS)
  endif()
  message(${_asyncio_level} "libasyncio.a: a plain archive of the objects: its "
          "internal names stay global and may clash with a program's own "
          "(${ASYNCIO_STATIC_PLAIN_REASON})")
  add_library(asyncio_static STATIC $<TARGET_OBJECTS:asyncio_objects>)
endif()
