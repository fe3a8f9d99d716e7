# Run by cmake/docs.cmake after Doxygen (cmake -DMAN3=DIR -P docs_man.cmake):
# a header's man page is named after its file (stream.h.3): give the ones
# under asyncio/ the library's prefix (asyncio_stream.h.3), as every other
# page of ours has, so that none takes a name another package may use, and
# point the pages that link to them (".so man3/stream.h.3") at the new name.
file(GLOB pages "${MAN3}/*.h.3")
set(renamed "")
foreach(page IN LISTS pages)
  get_filename_component(name "${page}" NAME)
  if(NOT name STREQUAL "asyncio.h.3")
    file(RENAME "${page}" "${MAN3}/asyncio_${name}")
    list(APPEND renamed "${name}")
  endif()
endforeach()
file(GLOB pages "${MAN3}/*.3")
foreach(page IN LISTS pages)
  file(READ "${page}" text)
  if(text MATCHES "^\\.so man3/([^\n]+)\n?$")
    list(FIND renamed "${CMAKE_MATCH_1}" i)
    if(i GREATER -1)
      file(WRITE "${page}" ".so man3/asyncio_${CMAKE_MATCH_1}\n")
    endif()
  endif()
endforeach()
