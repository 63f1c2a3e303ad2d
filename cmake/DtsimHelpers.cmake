# Warnings and sanitizers applied per target, and a one-line helper to add a doctest suite.

function(dtsim_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wpedantic)
  if(DTSIM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# dtsim_add_test(NAME SOURCES... LIBS lib...): one doctest executable, registered with CTest.
function(dtsim_add_test name)
  cmake_parse_arguments(ARG "" "" "LIBS" ${ARGN})
  add_executable(${name} ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE doctest::doctest ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})  # tests/test_support.hpp
  target_compile_definitions(${name} PRIVATE
    DTSIM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DTSIM_BINARY_DIR="${PROJECT_BINARY_DIR}")
  dtsim_set_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
endfunction()

# dtsim_embed(TARGET SYMBOL FILE): compiles FILE's bytes into TARGET as
# dtsim::embedded::SYMBOL (and SYMBOL_size), regenerated when FILE changes.
function(dtsim_embed target symbol file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_${symbol}.cpp")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DINPUT=${file} -DOUTPUT=${out} -DSYMBOL=${symbol}
            -P "${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake"
    DEPENDS "${file}" "${PROJECT_SOURCE_DIR}/cmake/EmbedFile.cmake"
    COMMENT "Embedding ${file}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()

# dtsim_include_root(TARGET DIR...): TARGET's users (and TARGET itself) find the headers of
# the source folders DIR... (relative to the top) as "DIR/name.hpp", and no others: each
# library exports a root of its own in the build tree, holding links to its folders only.
# So a header of a library a target does not link is not found, and an include that goes up
# the layers fails to compile.
function(dtsim_include_root target)
  set(root "${PROJECT_BINARY_DIR}/include/${target}")
  foreach(dir ${ARGN})
    get_filename_component(parent "${root}/${dir}" DIRECTORY)
    file(MAKE_DIRECTORY "${parent}")
    if(NOT IS_SYMLINK "${root}/${dir}")
      file(CREATE_LINK "${PROJECT_SOURCE_DIR}/${dir}" "${root}/${dir}" SYMBOLIC)
    endif()
  endforeach()
  target_include_directories(${target} PUBLIC "${root}")
endfunction()
