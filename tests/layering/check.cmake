# Builds the object library TARGET and checks the outcome: with EXPECT=fail, the build must
# fail because HEADER is not found (the layering held); with EXPECT=pass, it must succeed.
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT STREQUAL "pass")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TARGET} should compile:\n${out}")
  endif()
elseif(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled: an upward include was found")
elseif(NOT out MATCHES "${HEADER}: No such file or directory")
  message(FATAL_ERROR "${TARGET} failed for another reason than the missing header:\n${out}")
endif()
