// Small helpers shared by the test suites.
#pragma once

#include <doctest/doctest.h>

#include <string>

// Checks that `text` contains `part`, printing both when it does not.
#define CHECK_CONTAINS(text, part)                                 \
  CHECK_MESSAGE(std::string(text).find(part) != std::string::npos, \
                "\"" << std::string(text) << "\" should contain \"" << (part) << "\"")
