# The reference manual (docs/Doxyfile.in): HTML and one man page per header
# (with a page per function that points to it), made by the build and
# installed when Doxygen is found; without Doxygen nothing changes.
#   -DASYNCIO_DOCS=OFF          never build it
#   -DASYNCIO_DOCS_WERROR=ON    any Doxygen warning fails the build (CI):
#                               an undocumented function, parameter,
#                               return value, macro or struct member
option(ASYNCIO_DOCS "Build the reference manual when Doxygen is found" ${ASYNCIO_TOP_LEVEL})
option(ASYNCIO_DOCS_WERROR "Fail the manual's build on any Doxygen warning" OFF)

# The README and the licence go with every installed copy.
install(FILES README.md LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

if(NOT ASYNCIO_DOCS)
  return()
endif()
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "Doxygen not found: no reference manual (apt-get install doxygen)")
  return()
endif()

set(ASYNCIO_DOCS_OUT ${PROJECT_BINARY_DIR}/docs)
if(ASYNCIO_DOCS_WERROR)
  set(ASYNCIO_DOCS_WARN_AS_ERROR FAIL_ON_WARNINGS)
else()
  set(ASYNCIO_DOCS_WARN_AS_ERROR NO)
endif()
configure_file(docs/Doxyfile.in ${ASYNCIO_DOCS_OUT}/Doxyfile @ONLY)
file(GLOB ASYNCIO_DOCS_INPUTS CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/include/asyncio.h ${PROJECT_SOURCE_DIR}/include/asyncio/*.h
     ${PROJECT_SOURCE_DIR}/docs/*.md ${PROJECT_SOURCE_DIR}/docs/guide/*.md)
# The stamp is written only when Doxygen succeeded, so a failed build runs
# it again; the old output goes first, so no page of a removed name stays.
add_custom_command(
  OUTPUT ${ASYNCIO_DOCS_OUT}/stamp
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${ASYNCIO_DOCS_OUT}/html ${ASYNCIO_DOCS_OUT}/man
  COMMAND Doxygen::doxygen ${ASYNCIO_DOCS_OUT}/Doxyfile
  COMMAND ${CMAKE_COMMAND} -DMAN3=${ASYNCIO_DOCS_OUT}/man/man3
          -P ${PROJECT_SOURCE_DIR}/cmake/docs_man.cmake
  COMMAND ${CMAKE_COMMAND} -E touch ${ASYNCIO_DOCS_OUT}/stamp
  DEPENDS ${ASYNCIO_DOCS_INPUTS} ${ASYNCIO_DOCS_OUT}/Doxyfile
          ${PROJECT_SOURCE_DIR}/cmake/docs_man.cmake
  WORKING_DIRECTORY ${ASYNCIO_DOCS_OUT}
  COMMENT "Reference manual (Doxygen): ${ASYNCIO_DOCS_OUT}/html/index.html"
  VERBATIM)
add_custom_target(docs ALL DEPENDS ${ASYNCIO_DOCS_OUT}/stamp)
install(DIRECTORY ${ASYNCIO_DOCS_OUT}/html DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The man pages: one per header, and per function, type and macro (each a
# link to its header's). Doxygen makes one per struct member too (free.3,
# error.3...): those would cover the system's, so they stay behind.
install(DIRECTORY ${ASYNCIO_DOCS_OUT}/man/man3 DESTINATION ${CMAKE_INSTALL_MANDIR}
        FILES_MATCHING PATTERN "asyncio*" PATTERN "ASYNCIO*")
