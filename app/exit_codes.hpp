// The exit codes of `dtsim`. Only the command line chooses them (main.cpp).
#pragma once

namespace dtsim::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRunFailed = 1;  // the run diverged, or an [expect] check failed
inline constexpr int kExitBadInput = 2;   // scenario, dataset or command-line value
inline constexpr int kExitInternal = 3;   // an unexpected internal error

}  // namespace dtsim::app
